//! Parsing instrument output files into a run's `results` (the formats
//! are described in the module docs of [`super`]).

use serde_json::{Value, json};

use crate::domain::InstrumentType;

/// Largest file parsed for QC.
pub const MAX_PARSE_BYTES: usize = 8 << 20;

/// A format this module parses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    PlateReaderCsv,
    QpcrCtCsv,
}

impl Format {
    pub const ALL: [Format; 2] = [Format::PlateReaderCsv, Format::QpcrCtCsv];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::PlateReaderCsv => "plate_reader_csv",
            Format::QpcrCtCsv => "qpcr_ct_csv",
        }
    }

    pub fn parse(s: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.as_str() == s)
    }

    /// The instrument type whose output this is.
    pub fn instrument_type(self) -> InstrumentType {
        match self {
            Format::PlateReaderCsv => InstrumentType::PlateReader,
            Format::QpcrCtCsv => InstrumentType::Qpcr,
        }
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Format {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(Format::ALL.map(Format::as_str)))
            .description(Some(
                "An instrument output format parsed into a run's results: `plate_reader_csv` (a plate reader's), `qpcr_ct_csv` (a qPCR instrument's).",
            ))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Format {
    fn name() -> std::borrow::Cow<'static, str> {
        "DataFormat".into()
    }
}

/// Why a file could not be parsed: a line (1-based) and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

fn err(line: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        line,
        message: message.into(),
    }
}

/// Parses `bytes` in `format` into a results document with the computed
/// metrics under `metrics`.
pub fn parse(format: Format, bytes: &[u8]) -> Result<Value, ParseError> {
    let text = std::str::from_utf8(bytes).map_err(|_| err(1, "File is not UTF-8 text"))?;
    let text = text.trim_start_matches('\u{feff}');
    match format {
        Format::PlateReaderCsv => plate_reader(text),
        Format::QpcrCtCsv => qpcr(text),
    }
}

/// Splits CSV text into trimmed rows, skipping blank lines and `#` comments;
/// each row keeps its 1-based line number. Fields are comma-separated and may
/// be double-quoted.
fn rows(text: &str) -> Vec<(usize, Vec<String>)> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(i, l)| (i + 1, split_csv(l)))
        .collect()
}

fn split_csv(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                current.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut current).trim().to_owned()),
            c => current.push(c),
        }
    }
    fields.push(current.trim().to_owned());
    fields
}

/// The index of the first header matching one of `names` (case-insensitive).
fn column(header: &[String], names: &[&str]) -> Option<usize> {
    header
        .iter()
        .position(|h| names.iter().any(|n| h.eq_ignore_ascii_case(n)))
}

/// Like [`column`], but a missing column is an error on the header line.
fn required(
    header: &[String],
    line: usize,
    names: &[&str],
    what: &str,
) -> Result<usize, ParseError> {
    column(header, names).ok_or_else(|| {
        err(
            line,
            format!(
                "Missing the {what} column (expected one of: {})",
                names.join(", ")
            ),
        )
    })
}

fn well_ok(well: &str) -> bool {
    let mut chars = well.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_uppercase())
        && well.len() <= 4
        && chars.clone().count() >= 1
        && chars.all(|c| c.is_ascii_digit())
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// Sample standard deviation (n - 1).
fn sd(values: &[f64]) -> Option<f64> {
    let m = mean(values)?;
    (values.len() >= 2).then(|| {
        (values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (values.len() - 1) as f64).sqrt()
    })
}

fn round(v: f64) -> f64 {
    (v * 10_000.0).round() / 10_000.0
}

fn plate_reader(text: &str) -> Result<Value, ParseError> {
    let rows = rows(text);
    let (header_line, header) = rows.first().ok_or_else(|| err(1, "The file is empty"))?;
    let need = |names: &[&str], what: &str| required(header, *header_line, names, what);
    let well_col = need(&["Well", "Well Position"], "well")?;
    let type_col = need(&["Type", "Content", "Well Type"], "type")?;
    let value_col = need(&["Value", "Raw Data", "OD", "Signal"], "value")?;
    let mut groups: std::collections::BTreeMap<&'static str, Vec<f64>> = Default::default();
    let mut wells = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (line, row) in &rows[1..] {
        let get = |i: usize| row.get(i).map(String::as_str).unwrap_or("");
        let well = get(well_col);
        if !well_ok(well) {
            return Err(err(*line, format!("`{well}` is not a well (e.g. A1)")));
        }
        if !seen.insert(well.to_owned()) {
            return Err(err(*line, format!("Well {well} appears twice")));
        }
        let kind = match get(type_col).to_ascii_lowercase().as_str() {
            "sample" | "unknown" | "unkn" | "s" => "sample",
            "blank" | "b" => "blank",
            "positive" | "pos" | "positive control" | "high" => "positive",
            "negative" | "neg" | "negative control" | "low" => "negative",
            other => {
                return Err(err(
                    *line,
                    format!("`{other}` is not a well type (sample, blank, positive, negative)"),
                ));
            }
        };
        let value: f64 = get(value_col)
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
            .ok_or_else(|| err(*line, format!("`{}` is not a number", get(value_col))))?;
        groups.entry(kind).or_default().push(value);
        wells.push(json!({"well": well, "type": kind, "value": value}));
    }
    if wells.is_empty() {
        return Err(err(*header_line, "The file has no wells"));
    }
    let stats = |name: &str| groups.get(name).map(Vec::as_slice).unwrap_or(&[]);
    let (pos, neg, blank) = (stats("positive"), stats("negative"), stats("blank"));
    let mut metrics = serde_json::Map::new();
    if let (Some(mp), Some(mn), Some(sp), Some(sn)) = (mean(pos), mean(neg), sd(pos), sd(neg))
        && (mp - mn).abs() > 0.0
    {
        metrics.insert(
            "zPrime".into(),
            json!(round(1.0 - 3.0 * (sp + sn) / (mp - mn).abs())),
        );
    }
    let cvs: Vec<f64> = [pos, neg, blank]
        .iter()
        .filter_map(|g| Some(100.0 * sd(g)? / mean(g)?.abs()).filter(|v| v.is_finite()))
        .collect();
    if let Some(worst) = cvs.iter().copied().reduce(f64::max) {
        metrics.insert("controlCvPercent".into(), json!(round(worst)));
    }
    if let (Some(mp), Some(mb)) = (mean(pos), mean(blank))
        && mb.abs() > 0.0
    {
        metrics.insert("signalToBackground".into(), json!(round(mp / mb)));
    }
    Ok(json!({
        "format": Format::PlateReaderCsv.as_str(),
        "wells": wells,
        "summary": groups.iter().map(|(k, v)| (k.to_string(), json!({"count": v.len(), "mean": mean(v).map(round)}))).collect::<serde_json::Map<_, _>>(),
        "metrics": metrics,
    }))
}

fn qpcr(text: &str) -> Result<Value, ParseError> {
    let rows = rows(text);
    let (header_line, header) = rows.first().ok_or_else(|| err(1, "The file is empty"))?;
    let need = |names: &[&str], what: &str| required(header, *header_line, names, what);
    let well_col = need(&["Well", "Well Position"], "well")?;
    let sample_col = need(&["Sample", "Sample Name"], "sample")?;
    let target_col = need(&["Target", "Target Name", "Gene"], "target")?;
    let content_col = need(&["Content", "Task"], "content")?;
    let ct_col = need(&["Ct", "Cq", "CT", "Cт"], "Ct")?;
    let quantity_col = column(
        header,
        &["Quantity", "Starting Quantity", "Starting Quantity (SQ)"],
    );
    let mut wells = Vec::new();
    let mut ntc: Vec<Option<f64>> = Vec::new();
    let mut replicates: std::collections::BTreeMap<(String, String), Vec<f64>> = Default::default();
    let mut standards: Vec<(f64, f64)> = Vec::new();
    let mut undetermined_unknowns = 0usize;
    for (line, row) in &rows[1..] {
        let get = |i: usize| row.get(i).map(String::as_str).unwrap_or("");
        let well = get(well_col);
        if !well_ok(well) {
            return Err(err(*line, format!("`{well}` is not a well (e.g. A1)")));
        }
        let content = match get(content_col).to_ascii_lowercase().as_str() {
            "unkn" | "unknown" | "sample" => "unknown",
            "ntc" | "negative" | "neg" => "ntc",
            "std" | "standard" => "standard",
            "pos" | "positive" | "pos ctrl" => "positive",
            other => {
                return Err(err(
                    *line,
                    format!("`{other}` is not a content type (Unkn, NTC, Std, Pos)"),
                ));
            }
        };
        let raw_ct = get(ct_col);
        let ct = match raw_ct.to_ascii_lowercase().as_str() {
            "" | "undetermined" | "n/a" | "na" | "nan" | "-" => None,
            other => Some(
                other
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && (0.0..=100.0).contains(v))
                    .ok_or_else(|| err(*line, format!("`{raw_ct}` is not a Ct value")))?,
            ),
        };
        let sample = get(sample_col).to_owned();
        let target = get(target_col).to_owned();
        match (content, ct) {
            ("ntc", ct) => ntc.push(ct),
            ("standard", Some(ct)) => {
                let q = quantity_col
                    .map(get)
                    .and_then(|q| q.parse::<f64>().ok())
                    .filter(|q| *q > 0.0)
                    .ok_or_else(|| err(*line, "A standard needs a positive Quantity"))?;
                standards.push((q.log10(), ct));
            }
            ("unknown", None) => undetermined_unknowns += 1,
            (_, Some(ct)) => replicates
                .entry((sample.clone(), target.clone()))
                .or_default()
                .push(ct),
            _ => {}
        }
        wells.push(
            json!({"well": well, "sample": sample, "target": target, "content": content, "ct": ct}),
        );
    }
    if wells.is_empty() {
        return Err(err(*header_line, "The file has no wells"));
    }
    let mut metrics = serde_json::Map::new();
    if !ntc.is_empty() {
        // No amplification counts as the end of the run (40 cycles).
        let lowest = ntc
            .iter()
            .map(|c| c.unwrap_or(40.0))
            .fold(f64::INFINITY, f64::min);
        metrics.insert("ntcMinCt".into(), json!(round(lowest)));
    }
    if let Some(worst) = replicates.values().filter_map(|v| sd(v)).reduce(f64::max) {
        metrics.insert("replicateCtSd".into(), json!(round(worst)));
    }
    let mut efficiency = None;
    if standards.len() >= 3 {
        let n = standards.len() as f64;
        let mx = standards.iter().map(|s| s.0).sum::<f64>() / n;
        let my = standards.iter().map(|s| s.1).sum::<f64>() / n;
        let sxx: f64 = standards.iter().map(|s| (s.0 - mx).powi(2)).sum();
        let sxy: f64 = standards.iter().map(|s| (s.0 - mx) * (s.1 - my)).sum();
        if sxx > 0.0 {
            let slope = sxy / sxx;
            let e = 100.0 * (10f64.powf(-1.0 / slope) - 1.0);
            if e.is_finite() {
                efficiency = Some(round(e));
                metrics.insert(
                    "efficiencyDeviationPercent".into(),
                    json!(round((e - 100.0).abs())),
                );
            }
        }
    }
    Ok(json!({
        "format": Format::QpcrCtCsv.as_str(),
        "wells": wells,
        "summary": {
            "ntcWells": ntc.len(),
            "undeterminedUnknowns": undetermined_unknowns,
            "standards": standards.len(),
            "efficiencyPercent": efficiency,
        },
        "metrics": metrics,
    }))
}
