//! Instrument output parsing and QC.
//!
//! Two common formats become a run's `results`:
//!
//! - `plate_reader_csv`: one row per well, `Well,Type,Value` (types `sample`,
//!   `blank`, `positive`, `negative`; header names are matched loosely, as
//!   plate reader exports differ: `Content` or `Type`, `Raw Data` or `Value`).
//! - `qpcr_ct_csv`: one row per well, `Well,Sample,Target,Content,Ct` with
//!   an optional `Quantity` for standards (`Content`: `Unkn`, `NTC`, `Std`,
//!   `Pos`; a Ct of `Undetermined`, `N/A` or empty means no amplification).
//!
//! [`evaluate`] turns results into checks against the instrument type's
//! thresholds ([`thresholds`]) and an overall quality.
mod metrics;
mod parse;

use serde::Serialize;
use serde_json::Value;

pub use metrics::{Better, Metric, qc_metrics, thresholds};
pub use parse::{Format, MAX_PARSE_BYTES, ParseError, parse};

/// One QC check.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Check {
    /// The metric's name in the results' `metrics`, e.g. `zPrime`.
    pub metric: &'static str,
    pub description: &'static str,
    /// The run's value (none when its results lack it).
    pub value: Option<f64>,
    /// Whether the metric is better high or low.
    pub better: Better,
    /// Past this (in the bad direction), the check warns.
    pub warn: f64,
    /// Past this, the check fails.
    pub fail: f64,
    /// `pass`, `warning`, `fail`, or `not_available` (no value).
    #[cfg_attr(feature = "openapi", schema(value_type = CheckResult))]
    pub result: &'static str,
}

/// The QC report of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = QcReport))]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub checks: Vec<Check>,
    /// `excellent` (all pass), `good` (one warning), `fair` (more
    /// warnings), `poor` (any failure), or `not_available` (no results).
    #[cfg_attr(feature = "openapi", schema(value_type = DataQuality))]
    pub data_quality: &'static str,
}

impl Report {
    /// Whether a check failed (the data quality is `poor`).
    pub fn failed(&self) -> bool {
        self.data_quality == "poor"
    }

    /// The metrics whose checks failed.
    pub fn failed_metrics(&self) -> Vec<&'static str> {
        self.checks
            .iter()
            .filter(|c| c.result == "fail")
            .map(|c| c.metric)
            .collect()
    }
}

/// A check's result (the document's name for [`Check::result`]).
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
enum CheckResult {
    Pass,
    Warning,
    Fail,
    /// The results lack the metric.
    NotAvailable,
}

/// A run's overall QC grade (the document's name for
/// [`Report::data_quality`]).
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
enum DataQuality {
    /// Every check passes.
    Excellent,
    /// One warning.
    Good,
    /// More warnings.
    Fair,
    /// Any failure.
    Poor,
    /// No results.
    NotAvailable,
}

/// Evaluates `results` (with `metrics`) against `thresholds`.
pub fn evaluate(results: Option<&Value>, thresholds: &[Metric]) -> Report {
    let checks: Vec<Check> = thresholds
        .iter()
        .map(|m| {
            let value = results.and_then(|r| r["metrics"][m.name].as_f64());
            let result = match value {
                None => "not_available",
                Some(v) => {
                    let (fails, warns) = match m.better {
                        Better::Higher => (v < m.fail, v < m.warn),
                        Better::Lower => (v > m.fail, v > m.warn),
                    };
                    if fails {
                        "fail"
                    } else if warns {
                        "warning"
                    } else {
                        "pass"
                    }
                }
            };
            Check {
                metric: m.name,
                description: m.description,
                value,
                better: m.better,
                warn: m.warn,
                fail: m.fail,
                result,
            }
        })
        .collect();
    let evaluated: Vec<_> = checks
        .iter()
        .filter(|c| c.result != "not_available")
        .collect();
    let warnings = evaluated.iter().filter(|c| c.result == "warning").count();
    let data_quality = if evaluated.is_empty() {
        "not_available"
    } else if evaluated.iter().any(|c| c.result == "fail") {
        "poor"
    } else if warnings == 0 {
        "excellent"
    } else if warnings == 1 {
        "good"
    } else {
        "fair"
    };
    Report {
        checks,
        data_quality,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::InstrumentType;
    use serde_json::json;

    const PLATE: &str = "\u{feff}Well,Type,Value\n\
        # exported by a plate reader\n\
        A1,Blank,0.051\nA2,Blank,0.049\n\
        B1,Positive,1.210\nB2,Positive,1.190\nB3,Positive,1.200\n\
        C1,Negative,0.101\nC2,Negative,0.099\nC3,Negative,0.100\n\
        D1,Sample,0.650\nD2,\"Sample\",0.700\n";

    const QPCR: &str = "Well,Sample,Target,Content,Ct,Quantity\n\
        A1,S1,GAPDH,Unkn,20.10,\nA2,S1,GAPDH,Unkn,20.20,\nA3,S1,GAPDH,Unkn,20.15,\n\
        B1,STD1,GAPDH,Std,15.00,100000\nB2,STD2,GAPDH,Std,18.32,10000\n\
        B3,STD3,GAPDH,Std,21.64,1000\nB4,STD4,GAPDH,Std,24.96,100\n\
        C1,NTC,GAPDH,NTC,Undetermined,\nC2,NTC,GAPDH,NTC,38.5,\n";

    #[test]
    fn plate_reader_metrics() {
        let r = parse(Format::PlateReaderCsv, PLATE.as_bytes()).expect("parses");
        assert_eq!(r["wells"].as_array().map(Vec::len), Some(10));
        let z = r["metrics"]["zPrime"].as_f64().expect("z'");
        assert!((0.9..1.0).contains(&z), "{z}");
        let sb = r["metrics"]["signalToBackground"].as_f64().expect("s/b");
        assert!((23.0..25.0).contains(&sb), "{sb}");
        let report = evaluate(
            Some(&r),
            &thresholds(InstrumentType::PlateReader, &json!({})),
        );
        assert_eq!(report.data_quality, "excellent", "{report:?}");
    }

    #[test]
    fn qpcr_metrics() {
        let r = parse(Format::QpcrCtCsv, QPCR.as_bytes()).expect("parses");
        assert_eq!(r["metrics"]["ntcMinCt"], 38.5);
        let sd = r["metrics"]["replicateCtSd"].as_f64().expect("sd");
        assert!((0.04..0.06).contains(&sd), "{sd}");
        // Slope -3.32 per decade is 100 % efficiency.
        let dev = r["metrics"]["efficiencyDeviationPercent"]
            .as_f64()
            .expect("eff");
        assert!(dev < 0.5, "{dev}");
        let report = evaluate(Some(&r), &thresholds(InstrumentType::Qpcr, &json!({})));
        // NTC at 38.5 is above warn (38): pass; so all pass.
        assert_eq!(report.data_quality, "excellent", "{report:?}");
        let strict = thresholds(
            InstrumentType::Qpcr,
            &json!({"qcThresholds": {"ntcMinCt": {"warn": 39.0, "fail": 38.6}}}),
        );
        assert_eq!(evaluate(Some(&r), &strict).data_quality, "poor");
    }

    #[test]
    fn bad_files_name_the_line() {
        for (format, text, line) in [
            (Format::PlateReaderCsv, "Well,Value\nA1,1\n", 1),
            (Format::PlateReaderCsv, "Well,Type,Value\nA1,Blank,x\n", 2),
            (
                Format::PlateReaderCsv,
                "Well,Type,Value\nA1,Blank,1\nA1,Blank,1\n",
                3,
            ),
            (Format::PlateReaderCsv, "Well,Type,Value\nZZ9,Blank,1\n", 2),
            (
                Format::QpcrCtCsv,
                "Well,Sample,Target,Content,Ct\nA1,S,T,Std,20\n",
                2,
            ),
            (
                Format::QpcrCtCsv,
                "Well,Sample,Target,Content,Ct\nA1,S,T,Unkn,-5\n",
                2,
            ),
            (Format::QpcrCtCsv, "", 1),
        ] {
            let e = parse(format, text.as_bytes()).expect_err(text);
            assert_eq!(e.line, line, "{text:?}: {e}");
        }
        assert!(parse(Format::QpcrCtCsv, &[0xff, 0xfe]).is_err());
    }

    #[test]
    fn quality_grades() {
        let t = thresholds(InstrumentType::PlateReader, &json!({}));
        let with = |z: f64, cv: f64, sb: f64| json!({"metrics": {"zPrime": z, "controlCvPercent": cv, "signalToBackground": sb}});
        assert_eq!(
            evaluate(Some(&with(0.7, 5.0, 10.0)), &t).data_quality,
            "excellent"
        );
        assert_eq!(
            evaluate(Some(&with(0.4, 5.0, 10.0)), &t).data_quality,
            "good"
        );
        assert_eq!(
            evaluate(Some(&with(0.4, 15.0, 10.0)), &t).data_quality,
            "fair"
        );
        assert_eq!(
            evaluate(Some(&with(-0.1, 5.0, 10.0)), &t).data_quality,
            "poor"
        );
        assert_eq!(evaluate(None, &t).data_quality, "not_available");
    }

    proptest::proptest! {
        #[test]
        fn parsers_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            let _ = parse(Format::PlateReaderCsv, &bytes);
            let _ = parse(Format::QpcrCtCsv, &bytes);
        }
    }
}
