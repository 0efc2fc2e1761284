//! The shape of each instrument type's `configuration` and of every
//! instrument's `calibration`: which fields exist, their types and ranges,
//! and which QC thresholds a type's configuration may set.
//!
//! A document is checked field by field; every problem becomes one
//! `FieldError` whose `field` is the JSON path (`configuration.wells`), so a
//! client can point at the exact input.

use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::InstrumentType;
use super::qc::{Better, qc_metrics};
use crate::error::FieldError;

/// What one field may hold.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Number {
        min: f64,
        max: f64,
    },
    Integer {
        min: i64,
        max: i64,
    },
    IntegerOneOf(&'static [i64]),
    Text {
        max_len: usize,
    },
    OneOf(&'static [&'static str]),
    Bool,
    TextList {
        max_items: usize,
    },
    IntegerList {
        min: i64,
        max: i64,
        max_items: usize,
    },
    Timestamp,
    /// Free-form object (e.g. raw calibration results), size-capped by the caller.
    Object,
}

/// One allowed field.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    /// What a form calls it, with its unit ("Setpoint (°C)"): the JSON
    /// Schema's `title`.
    pub title: &'static str,
    pub kind: Kind,
}

macro_rules! field {
    ($name:expr, $title:expr, $kind:expr $(,)?) => {
        Field {
            name: $name,
            title: $title,
            kind: $kind,
        }
    };
}
pub(crate) use field;

/// Fields every type's configuration may carry.
const COMMON: &[Field] = &[
    field!(
        "calibrationIntervalDays",
        "Calibration interval (days)",
        Kind::Integer { min: 1, max: 3650 },
    ),
    field!(
        "commandTimeoutSeconds",
        "Command timeout (seconds)",
        Kind::Integer {
            min: 5,
            max: 86_400
        },
    ),
    field!("notes", "Notes", Kind::Text { max_len: 2000 }),
];

/// The configuration fields of `kind`, beside [`COMMON`] and `qcThresholds`.
pub fn configuration_fields(kind: InstrumentType) -> &'static [Field] {
    use InstrumentType::*;
    match kind {
        DnaSequencer => &[
            field!(
                "readLength",
                "Read length (bases)",
                Kind::Integer {
                    min: 1,
                    max: 100_000
                }
            ),
            field!("pairedEnd", "Paired-end reads", Kind::Bool),
            field!("flowCell", "Flow cell", Kind::Text { max_len: 64 }),
        ],
        LiquidHandler => &[
            field!("channels", "Channels", Kind::Integer { min: 1, max: 384 }),
            field!("tipType", "Tip type", Kind::Text { max_len: 64 }),
            field!(
                "deckPositions",
                "Deck positions",
                Kind::Integer { min: 1, max: 100 },
            ),
        ],
        Hplc => &[
            field!(
                "flowRateMlMin",
                "Flow rate (mL/min)",
                Kind::Number {
                    min: 0.0,
                    max: 100.0,
                },
            ),
            field!(
                "maxPressureBar",
                "Maximum pressure (bar)",
                Kind::Number {
                    min: 0.0,
                    max: 2000.0,
                },
            ),
            field!("columnType", "Column type", Kind::Text { max_len: 128 }),
        ],
        Qpcr => &[
            field!("wells", "Wells", Kind::IntegerOneOf(&[48, 96, 384])),
            field!("cycles", "Cycles", Kind::Integer { min: 1, max: 100 }),
            field!("dyes", "Dyes", Kind::TextList { max_items: 8 }),
        ],
        PlateReader => &[
            field!(
                "wells",
                "Wells",
                Kind::IntegerOneOf(&[6, 12, 24, 48, 96, 384, 1536]),
            ),
            field!(
                "readMode",
                "Read mode",
                Kind::OneOf(&["absorbance", "fluorescence", "luminescence"]),
            ),
            field!(
                "wavelengthNm",
                "Wavelength (nm)",
                Kind::Integer {
                    min: 200,
                    max: 1000
                },
            ),
        ],
        Centrifuge => &[
            field!(
                "maxRpm",
                "Maximum speed (rpm)",
                Kind::Integer {
                    min: 1,
                    max: 150_000
                }
            ),
            field!("rotor", "Rotor", Kind::Text { max_len: 64 }),
        ],
        Incubator => &[
            field!(
                "setpointC",
                "Setpoint (°C)",
                Kind::Number {
                    min: -20.0,
                    max: 100.0,
                },
            ),
            field!(
                "co2Percent",
                "CO₂ (%)",
                Kind::Number {
                    min: 0.0,
                    max: 20.0,
                },
            ),
            field!(
                "humidityPercent",
                "Humidity (%)",
                Kind::Number {
                    min: 0.0,
                    max: 100.0,
                },
            ),
        ],
        Freezer => &[
            field!(
                "setpointC",
                "Setpoint (°C)",
                Kind::Number {
                    min: -200.0,
                    max: 0.0,
                },
            ),
            field!(
                "alarmHighC",
                "High-temperature alarm (°C)",
                Kind::Number {
                    min: -200.0,
                    max: 20.0,
                },
            ),
        ],
        Spectrophotometer => &[
            field!(
                "minWavelengthNm",
                "Lowest wavelength (nm)",
                Kind::Integer {
                    min: 100,
                    max: 3000
                },
            ),
            field!(
                "maxWavelengthNm",
                "Highest wavelength (nm)",
                Kind::Integer {
                    min: 100,
                    max: 3000
                },
            ),
            field!(
                "pathLengthMm",
                "Path length (mm)",
                Kind::Number {
                    min: 0.1,
                    max: 100.0
                }
            ),
        ],
        Microscope => &[
            field!("objectives", "Objectives", Kind::TextList { max_items: 12 }),
            field!("camera", "Camera", Kind::Text { max_len: 128 }),
        ],
        MassSpectrometer => &[
            field!(
                "ionization",
                "Ionization",
                Kind::OneOf(&["esi", "apci", "maldi", "ei", "ci"]),
            ),
            field!(
                "massRangeMin",
                "Mass range from (m/z)",
                Kind::Number { min: 0.0, max: 1e6 }
            ),
            field!(
                "massRangeMax",
                "Mass range to (m/z)",
                Kind::Number { min: 0.0, max: 1e6 }
            ),
        ],
        FlowCytometer => &[
            field!(
                "lasersNm",
                "Lasers (nm)",
                Kind::IntegerList {
                    min: 200,
                    max: 1000,
                    max_items: 10,
                },
            ),
            field!("detectors", "Detectors", Kind::Integer { min: 1, max: 100 }),
        ],
    }
}

/// The calibration document's fields (all types).
pub const CALIBRATION_FIELDS: &[Field] = &[
    field!("lastCalibratedAt", "Last calibrated", Kind::Timestamp),
    field!("dueAt", "Calibration due", Kind::Timestamp),
    field!("performedBy", "Performed by", Kind::Text { max_len: 255 }),
    field!(
        "standard",
        "Reference standard",
        Kind::Text { max_len: 255 }
    ),
    field!("certificate", "Certificate", Kind::Text { max_len: 255 }),
    field!("results", "Results", Kind::Object),
];

/// The fields as a JSON Schema (2020-12) object: what a client needs to
/// build a form for them (`GET /api/v1/instrument-types`), each titled,
/// and `x-order` listing them in the order a form shows them. No field is
/// required: the server fills none in, and an empty document is valid.
pub fn json_schema(fields: &[Field]) -> Value {
    let properties: Map<String, Value> = fields
        .iter()
        .map(|f| {
            let mut schema = kind_schema(f.kind);
            schema["title"] = Value::from(f.title);
            (f.name.to_owned(), schema)
        })
        .collect();
    // A JSON object's keys have no order; forms show the fields as listed.
    let order: Vec<&str> = fields.iter().map(|f| f.name).collect();
    serde_json::json!({
        "type": "object",
        "properties": properties,
        "additionalProperties": false,
        "x-order": order,
    })
}

fn kind_schema(kind: Kind) -> Value {
    use serde_json::json;
    match kind {
        Kind::Number { min, max } => json!({"type": "number", "minimum": min, "maximum": max}),
        Kind::Integer { min, max } => json!({"type": "integer", "minimum": min, "maximum": max}),
        Kind::IntegerOneOf(values) => json!({"type": "integer", "enum": values}),
        Kind::Text { max_len } => json!({"type": "string", "maxLength": max_len}),
        Kind::OneOf(values) => json!({"type": "string", "enum": values}),
        Kind::Bool => json!({"type": "boolean"}),
        Kind::TextList { max_items } => {
            json!({"type": "array", "items": {"type": "string"}, "maxItems": max_items})
        }
        Kind::IntegerList {
            min,
            max,
            max_items,
        } => json!({
            "type": "array",
            "items": {"type": "integer", "minimum": min, "maximum": max},
            "maxItems": max_items,
        }),
        Kind::Timestamp => json!({"type": "string", "format": "date-time"}),
        Kind::Object => json!({"type": "object"}),
    }
}

/// How a configuration field bounds a metric the instrument reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    /// The value it is held at.
    Setpoint,
    /// An alarm or a maximum: above it is out of bounds.
    High,
    /// Below it is out of bounds.
    Low,
}

impl LimitKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Setpoint => "setpoint",
            Self::High => "high",
            Self::Low => "low",
        }
    }
}

/// A configuration field that is a limit of a reported metric: charts
/// draw it on that metric's (the schema's `x-limit`). The metric names are
/// those the bridges report for the type (the simulator's too).
#[derive(Debug, Clone, Copy)]
pub struct MetricLimit {
    pub field: &'static str,
    pub metric: &'static str,
    pub kind: LimitKind,
}

macro_rules! limit {
    ($field:expr, $metric:expr, $kind:expr) => {
        MetricLimit {
            field: $field,
            metric: $metric,
            kind: $kind,
        }
    };
}

/// The limits among `kind`'s configuration fields.
pub fn metric_limits(kind: InstrumentType) -> &'static [MetricLimit] {
    use InstrumentType::*;
    use LimitKind::*;
    match kind {
        Freezer => &[
            limit!("setpointC", "temperature", Setpoint),
            limit!("alarmHighC", "temperature", High),
        ],
        Incubator => &[
            limit!("setpointC", "temperature", Setpoint),
            limit!("co2Percent", "co2Percent", Setpoint),
            limit!("humidityPercent", "humidityPercent", Setpoint),
        ],
        Centrifuge => &[limit!("maxRpm", "speedRpm", High)],
        Hplc => &[
            limit!("flowRateMlMin", "flowRateMlMin", Setpoint),
            limit!("maxPressureBar", "pressureBar", High),
        ],
        _ => &[],
    }
}

/// `kind`'s whole configuration as a JSON Schema: the common fields, its
/// own (a limit of a metric marked `x-limit: {metric, kind}`), and
/// `qcThresholds` (`{metric: {warn, fail}}`) when it has QC metrics.
pub fn configuration_schema(kind: InstrumentType) -> Value {
    // The type's own fields first: what a form asks about this instrument.
    let fields: Vec<Field> = configuration_fields(kind)
        .iter()
        .chain(COMMON)
        .copied()
        .collect();
    let mut schema = json_schema(&fields);
    for limit in metric_limits(kind) {
        schema["properties"][limit.field]["x-limit"] =
            serde_json::json!({"metric": limit.metric, "kind": limit.kind.as_str()});
    }
    let metrics = qc_metrics(kind);
    if !metrics.is_empty()
        && let Some(properties) = schema["properties"].as_object_mut()
    {
        let limits: Map<String, Value> = metrics
            .iter()
            .map(|m| {
                let bound = serde_json::json!({"type": "number"});
                (
                    m.name.to_owned(),
                    serde_json::json!({
                        "type": "object",
                        "description": m.description,
                        "properties": {"warn": bound, "fail": bound},
                        "additionalProperties": false,
                    }),
                )
            })
            .collect();
        properties.insert(
            "qcThresholds".to_owned(),
            serde_json::json!({"type": "object", "title": "QC thresholds", "properties": limits, "additionalProperties": false}),
        );
        if let Some(order) = schema["x-order"].as_array_mut() {
            order.push(Value::from("qcThresholds"));
        }
    }
    schema
}

/// Checks `configuration` against `kind`'s schema.
pub fn check_configuration(kind: InstrumentType, doc: &Map<String, Value>) -> Vec<FieldError> {
    let mut problems = Vec::new();
    let specific = configuration_fields(kind);
    for (name, value) in doc {
        let path = format!("configuration.{name}");
        if name == "qcThresholds" {
            check_thresholds(kind, value, &path, &mut problems);
            continue;
        }
        match COMMON.iter().chain(specific).find(|f| f.name == name) {
            Some(f) => check_value(f.kind, value, &path, &mut problems),
            None => problems.push(FieldError::new(
                path,
                format!(
                    "Unknown field for a {}; allowed: {}",
                    kind.as_str(),
                    COMMON
                        .iter()
                        .chain(specific)
                        .map(|f| f.name)
                        .chain(
                            (!qc_metrics(kind).is_empty())
                                .then_some("qcThresholds")
                                .into_iter()
                        )
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }
    problems
}

/// Checks a `calibration` document.
pub fn check_calibration(doc: &Map<String, Value>) -> Vec<FieldError> {
    let mut problems = Vec::new();
    for (name, value) in doc {
        let path = format!("calibration.{name}");
        match CALIBRATION_FIELDS.iter().find(|f| f.name == name) {
            Some(f) => check_value(f.kind, value, &path, &mut problems),
            None => problems.push(FieldError::new(
                path,
                format!(
                    "Unknown field; allowed: {}",
                    CALIBRATION_FIELDS
                        .iter()
                        .map(|f| f.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }
    problems
}

/// The calibration's due date, when it has a valid one.
pub fn calibration_due(doc: &Map<String, Value>) -> Option<OffsetDateTime> {
    doc.get("dueAt")
        .and_then(Value::as_str)
        .and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok())
}

fn check_thresholds(
    kind: InstrumentType,
    value: &Value,
    path: &str,
    problems: &mut Vec<FieldError>,
) {
    let metrics = qc_metrics(kind);
    let Some(map) = value.as_object() else {
        problems.push(FieldError::new(path, "Must be an object"));
        return;
    };
    for (name, set) in map {
        let metric_path = format!("{path}.{name}");
        let Some(metric) = metrics.iter().find(|m| m.name == name) else {
            problems.push(FieldError::new(
                metric_path,
                format!(
                    "Not a QC metric of a {}; metrics: {}",
                    kind.as_str(),
                    if metrics.is_empty() {
                        "none".to_owned()
                    } else {
                        metrics
                            .iter()
                            .map(|m| m.name)
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                ),
            ));
            continue;
        };
        let Some(set) = set.as_object() else {
            problems.push(FieldError::new(
                metric_path,
                "Must be an object {warn, fail}",
            ));
            continue;
        };
        for key in set.keys().filter(|k| *k != "warn" && *k != "fail") {
            problems.push(FieldError::new(
                format!("{metric_path}.{key}"),
                "Unknown field; allowed: warn, fail",
            ));
        }
        let number = |key: &str, problems: &mut Vec<FieldError>| match set.get(key) {
            None => None,
            Some(v) => match v.as_f64().filter(|n| n.is_finite()) {
                Some(n) => Some(n),
                None => {
                    problems.push(FieldError::new(
                        format!("{metric_path}.{key}"),
                        "Must be a number",
                    ));
                    None
                }
            },
        };
        let warn = number("warn", problems).unwrap_or(metric.warn);
        let fail = number("fail", problems).unwrap_or(metric.fail);
        let ordered = match metric.better {
            Better::Higher => warn >= fail,
            Better::Lower => warn <= fail,
        };
        if !ordered {
            problems.push(FieldError::new(
                metric_path,
                match metric.better {
                    Better::Higher => "warn must be at least fail (higher is better)",
                    Better::Lower => "warn must be at most fail (lower is better)",
                },
            ));
        }
    }
}

pub fn check_value(kind: Kind, value: &Value, path: &str, problems: &mut Vec<FieldError>) {
    let mut fail = |message: String| problems.push(FieldError::new(path, message));
    match kind {
        Kind::Number { min, max } => match value.as_f64() {
            Some(n) if n >= min && n <= max => {}
            Some(_) => fail(format!("Must be from {min} to {max}")),
            None => fail("Must be a number".into()),
        },
        Kind::Integer { min, max } => match value.as_i64() {
            Some(n) if n >= min && n <= max => {}
            Some(_) => fail(format!("Must be from {min} to {max}")),
            None => fail("Must be an integer".into()),
        },
        Kind::IntegerOneOf(allowed) => match value.as_i64() {
            Some(n) if allowed.contains(&n) => {}
            _ => fail(format!(
                "Must be one of: {}",
                allowed
                    .iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        },
        Kind::Text { max_len } => match value.as_str() {
            Some(s) if crate::domain::printable_within(s, max_len) => {}
            Some(_) => fail(format!(
                "Must be at most {max_len} characters without control characters"
            )),
            None => fail("Must be a string".into()),
        },
        Kind::OneOf(allowed) => match value.as_str() {
            Some(s) if allowed.contains(&s) => {}
            _ => fail(format!("Must be one of: {}", allowed.join(", "))),
        },
        Kind::Bool => {
            if !value.is_boolean() {
                fail("Must be true or false".into());
            }
        }
        Kind::TextList { max_items } => match value.as_array() {
            Some(items)
                if items.len() <= max_items
                    && items
                        .iter()
                        .all(|i| i.as_str().is_some_and(|s| (1..=64).contains(&s.len()))) => {}
            _ => fail(format!(
                "Must be a list of at most {max_items} strings (1 to 64 characters)"
            )),
        },
        Kind::IntegerList {
            min,
            max,
            max_items,
        } => match value.as_array() {
            Some(items)
                if items.len() <= max_items
                    && items
                        .iter()
                        .all(|i| i.as_i64().is_some_and(|n| n >= min && n <= max)) => {}
            _ => fail(format!(
                "Must be a list of at most {max_items} integers from {min} to {max}"
            )),
        },
        Kind::Timestamp => {
            if value
                .as_str()
                .and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok())
                .is_none()
            {
                fail("Must be an RFC 3339 timestamp".into());
            }
        }
        Kind::Object => {
            if !value.is_object() {
                fail("Must be a JSON object".into());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fields(problems: &[FieldError]) -> Vec<&str> {
        problems.iter().map(|p| p.field.as_str()).collect()
    }

    #[test]
    fn every_type_has_a_schema_its_own_checks_accept() {
        for kind in InstrumentType::ALL {
            let schema = configuration_schema(*kind);
            let properties = schema["properties"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            assert!(
                properties.contains_key("calibrationIntervalDays"),
                "{kind:?}"
            );
            for field in configuration_fields(*kind) {
                assert!(
                    properties.contains_key(field.name),
                    "{kind:?} {}",
                    field.name
                );
            }
            assert_eq!(
                properties.contains_key("qcThresholds"),
                !qc_metrics(*kind).is_empty(),
                "{kind:?}"
            );
        }
        let schema = configuration_schema(InstrumentType::Qpcr);
        assert_eq!(
            schema["properties"]["wells"],
            serde_json::json!({"type": "integer", "enum": [48, 96, 384], "title": "Wells"})
        );
        // Every field is titled for a form, with its unit.
        for kind in InstrumentType::ALL {
            let schema = configuration_schema(*kind);
            for (name, property) in schema["properties"].as_object().into_iter().flatten() {
                assert!(
                    property["title"].as_str().is_some_and(|t| !t.is_empty()),
                    "{kind:?} {name} has no title"
                );
            }
        }
        let incubator = configuration_schema(InstrumentType::Incubator);
        assert_eq!(
            incubator["properties"]["setpointC"]["title"],
            "Setpoint (°C)"
        );
        // The type's own fields first, then the common ones.
        assert_eq!(
            incubator["x-order"],
            json!([
                "setpointC",
                "co2Percent",
                "humidityPercent",
                "calibrationIntervalDays",
                "commandTimeoutSeconds",
                "notes"
            ])
        );
    }

    #[test]
    fn limits_are_numeric_fields_of_their_type() {
        for kind in InstrumentType::ALL {
            for limit in metric_limits(*kind) {
                let field = configuration_fields(*kind)
                    .iter()
                    .find(|f| f.name == limit.field);
                assert!(
                    matches!(
                        field.map(|f| f.kind),
                        Some(Kind::Number { .. } | Kind::Integer { .. })
                    ),
                    "{kind:?} {} is not a numeric field",
                    limit.field
                );
            }
        }
        let freezer = configuration_schema(InstrumentType::Freezer);
        assert_eq!(
            freezer["properties"]["alarmHighC"]["x-limit"],
            json!({"metric": "temperature", "kind": "high"})
        );
        assert!(freezer["properties"]["notes"].get("x-limit").is_none());
    }

    #[test]
    fn accepts_a_valid_plate_reader_configuration() {
        let doc = json!({
            "wells": 96, "readMode": "absorbance", "wavelengthNm": 450,
            "calibrationIntervalDays": 180,
            "qcThresholds": {"zPrime": {"warn": 0.6, "fail": 0.4}}
        });
        assert!(
            check_configuration(
                InstrumentType::PlateReader,
                doc.as_object().expect("object")
            )
            .is_empty()
        );
    }

    #[test]
    fn names_every_bad_field() {
        let doc = json!({
            "wells": 97, "readMode": "smell", "flowRateMlMin": 1.0,
            "qcThresholds": {"zPrime": {"warn": 0.1, "fail": 0.5}, "ntcMinCt": {}}
        });
        let problems = check_configuration(
            InstrumentType::PlateReader,
            doc.as_object().expect("object"),
        );
        let mut got = fields(&problems);
        got.sort();
        assert_eq!(
            got,
            [
                "configuration.flowRateMlMin",
                "configuration.qcThresholds.ntcMinCt",
                "configuration.qcThresholds.zPrime",
                "configuration.readMode",
                "configuration.wells",
            ]
        );
    }

    #[test]
    fn wrong_types_are_named() {
        let doc = json!({"setpointC": "cold", "alarmHighC": -300});
        let problems = check_configuration(InstrumentType::Freezer, doc.as_object().expect("o"));
        assert_eq!(problems.len(), 2);
        let cal = json!({"dueAt": "tomorrow", "colour": "red", "results": []});
        let mut got = fields(&check_calibration(cal.as_object().expect("o"))).join(" ");
        got.push(' ');
        assert!(got.contains("calibration.dueAt "));
        assert!(got.contains("calibration.colour "));
        assert!(got.contains("calibration.results "));
    }
}
