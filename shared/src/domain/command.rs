//! Control commands: which exist for which instrument type, their
//! parameters, and in which instrument states they are allowed.

use serde_json::{Map, Value};

use super::schema::{Field, Kind};
use super::{InstrumentStatus, InstrumentType};
use crate::error::FieldError;

/// One command an instrument accepts.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub name: &'static str,
    /// Parameters it accepts; all of `required` must be present.
    pub parameters: &'static [Field],
    pub required: &'static [&'static str],
    /// The instrument states in which it may be sent.
    pub allowed_in: &'static [InstrumentStatus],
    pub description: &'static str,
}

use InstrumentStatus::{Idle, Online, Running};

const READY: &[InstrumentStatus] = &[Online, Idle];
const ACTIVE: &[InstrumentStatus] = &[Running];
const ANY_IN_SERVICE: &[InstrumentStatus] = &[Online, Idle, Running];

macro_rules! spec {
    ($name:expr, $parameters:expr, $required:expr, $allowed_in:expr, $description:expr $(,)?) => {
        Spec {
            name: $name,
            parameters: $parameters,
            required: $required,
            allowed_in: $allowed_in,
            description: $description,
        }
    };
}

use super::schema::field as f;

/// Commands every instrument accepts.
pub const STANDARD: &[Spec] = &[
    spec!(
        "start",
        &[
            f!("protocol", "Protocol", Kind::Text { max_len: 255 }),
            f!("settings", "Settings", Kind::Object),
        ],
        &[],
        READY,
        "Start a run",
    ),
    spec!(
        "stop",
        &[f!("reason", "Reason", Kind::Text { max_len: 1000 })],
        &[],
        ACTIVE,
        "Stop the current run",
    ),
    spec!("pause", &[], &[], ACTIVE, "Pause the current run"),
    spec!("resume", &[], &[], ACTIVE, "Resume a paused run"),
    spec!("calibrate", &[], &[], READY, "Run the calibration routine"),
    spec!(
        "home",
        &[],
        &[],
        READY,
        "Move mechanics to their home position"
    ),
];

/// Commands only `kind` accepts.
pub fn specific(kind: InstrumentType) -> &'static [Spec] {
    use InstrumentType::*;
    match kind {
        Centrifuge => &[
            spec!(
                "set_speed",
                &[f!(
                    "rpm",
                    "Speed (rpm)",
                    Kind::Integer {
                        min: 1,
                        max: 150_000
                    }
                )],
                &["rpm"],
                ANY_IN_SERVICE,
                "Set the rotor speed",
            ),
            spec!("open_lid", &[], &[], READY, "Open the lid"),
        ],
        Incubator => &[
            spec!(
                "set_temperature",
                &[f!(
                    "celsius",
                    "Temperature (°C)",
                    Kind::Number {
                        min: -20.0,
                        max: 100.0,
                    },
                )],
                &["celsius"],
                ANY_IN_SERVICE,
                "Change the temperature setpoint",
            ),
            spec!(
                "set_co2",
                &[f!(
                    "percent",
                    "Percent (%)",
                    Kind::Number {
                        min: 0.0,
                        max: 20.0,
                    },
                )],
                &["percent"],
                ANY_IN_SERVICE,
                "Change the CO2 setpoint",
            ),
        ],
        Freezer => &[
            spec!(
                "set_temperature",
                &[f!(
                    "celsius",
                    "Temperature (°C)",
                    Kind::Number {
                        min: -200.0,
                        max: 0.0,
                    },
                )],
                &["celsius"],
                ANY_IN_SERVICE,
                "Change the temperature setpoint",
            ),
            spec!("defrost", &[], &[], READY, "Start a defrost cycle"),
        ],
        Hplc => &[
            spec!(
                "purge",
                &[f!(
                    "seconds",
                    "Seconds",
                    Kind::Integer { min: 1, max: 3600 }
                )],
                &[],
                READY,
                "Purge the pump lines",
            ),
            spec!(
                "equilibrate",
                &[f!("minutes", "Minutes", Kind::Integer { min: 1, max: 600 })],
                &["minutes"],
                READY,
                "Equilibrate the column",
            ),
        ],
        LiquidHandler => &[
            spec!("eject_tips", &[], &[], READY, "Eject all mounted tips"),
            spec!("prime", &[], &[], READY, "Prime the liquid system"),
        ],
        PlateReader => &[
            spec!(
                "shake",
                &[f!("seconds", "Seconds", Kind::Integer { min: 1, max: 600 })],
                &["seconds"],
                READY,
                "Shake the plate",
            ),
            spec!("eject_plate", &[], &[], READY, "Eject the plate carrier"),
        ],
        Qpcr => &[
            spec!("open_lid", &[], &[], READY, "Open the heated lid"),
            spec!("close_lid", &[], &[], READY, "Close the heated lid"),
        ],
        DnaSequencer => &[spec!("wash", &[], &[], READY, "Run a maintenance wash")],
        Spectrophotometer => &[spec!("blank", &[], &[], READY, "Measure a blank")],
        Microscope => &[
            spec!("autofocus", &[], &[], ANY_IN_SERVICE, "Autofocus"),
            spec!(
                "capture_image",
                &[],
                &[],
                ANY_IN_SERVICE,
                "Capture an image"
            ),
        ],
        MassSpectrometer => &[spec!("tune", &[], &[], READY, "Run the tune routine")],
        FlowCytometer => &[
            spec!("clean", &[], &[], READY, "Run the cleaning cycle"),
            spec!("prime", &[], &[], READY, "Prime the fluidics"),
        ],
    }
}

/// The command `name` of `kind`, if it has one.
pub fn find(kind: InstrumentType, name: &str) -> Option<&'static Spec> {
    STANDARD
        .iter()
        .chain(specific(kind))
        .find(|s| s.name == name)
}

/// Every command name `kind` accepts, for error messages.
pub fn names(kind: InstrumentType) -> String {
    STANDARD
        .iter()
        .chain(specific(kind))
        .map(|s| s.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why a command cannot be sent to an instrument in `status` now, if it cannot.
pub fn refusal(spec: &Spec, status: InstrumentStatus) -> Option<String> {
    if spec.allowed_in.contains(&status) {
        return None;
    }
    Some(match status {
        InstrumentStatus::Maintenance => {
            "The instrument is in maintenance; commands are refused until it is back in service"
                .to_owned()
        }
        InstrumentStatus::Error => {
            "The instrument reports an error; clear it at the instrument before sending commands"
                .to_owned()
        }
        InstrumentStatus::Offline => {
            "The instrument is offline; no bridge can deliver the command".to_owned()
        }
        other => format!(
            "`{}` cannot be sent while the instrument is {}; allowed when {}",
            spec.name,
            other.as_str(),
            spec.allowed_in
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" or ")
        ),
    })
}

/// Checks `parameters` against the command's specification.
pub fn check_parameters(spec: &Spec, parameters: &Map<String, Value>) -> Vec<FieldError> {
    let mut problems = Vec::new();
    for (name, value) in parameters {
        let path = format!("parameters.{name}");
        match spec.parameters.iter().find(|p| p.name == name) {
            Some(p) => super::schema::check_value(p.kind, value, &path, &mut problems),
            None => problems.push(FieldError::new(
                path,
                if spec.parameters.is_empty() {
                    format!("`{}` takes no parameters", spec.name)
                } else {
                    format!(
                        "Unknown parameter; `{}` takes: {}",
                        spec.name,
                        spec.parameters
                            .iter()
                            .map(|p| p.name)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                },
            )),
        }
    }
    for required in spec.required {
        if !parameters.contains_key(*required) {
            problems.push(FieldError::new(
                format!("parameters.{required}"),
                "Required",
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn standard_and_specific_commands() {
        assert!(find(InstrumentType::Centrifuge, "set_speed").is_some());
        assert!(find(InstrumentType::Hplc, "set_speed").is_none());
        assert!(find(InstrumentType::Hplc, "start").is_some());
        for kind in InstrumentType::ALL {
            let mut seen = std::collections::HashSet::new();
            for spec in STANDARD.iter().chain(specific(*kind)) {
                assert!(seen.insert(spec.name), "{kind:?} lists {} twice", spec.name);
                for required in spec.required {
                    assert!(spec.parameters.iter().any(|p| p.name == *required));
                }
            }
        }
    }

    #[test]
    fn states_and_parameters() {
        let start = find(InstrumentType::Centrifuge, "start").expect("start");
        assert!(refusal(start, InstrumentStatus::Idle).is_none());
        assert!(refusal(start, InstrumentStatus::Running).is_some());
        assert!(refusal(start, InstrumentStatus::Maintenance).is_some());
        let speed = find(InstrumentType::Centrifuge, "set_speed").expect("set_speed");
        assert!(check_parameters(speed, json!({"rpm": 3000}).as_object().expect("o")).is_empty());
        let bad = check_parameters(speed, json!({"rpm": 0, "x": 1}).as_object().expect("o"));
        assert_eq!(bad.len(), 2);
        assert_eq!(check_parameters(speed, &Map::new()).len(), 1);
    }
}
