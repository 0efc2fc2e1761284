//! The QC metrics each instrument type computes from its run results, with
//! their default thresholds; an instrument's `configuration.qcThresholds`
//! overrides them ([`thresholds`]).

use serde_json::Value;

use crate::domain::InstrumentType;

/// Whether a QC metric is better high or low.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Better {
    Higher,
    Lower,
}

/// A QC metric a type computes, with its default thresholds.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    pub name: &'static str,
    pub better: Better,
    /// Past this (in the bad direction), the check warns.
    pub warn: f64,
    /// Past this, the check fails.
    pub fail: f64,
    pub description: &'static str,
}

macro_rules! metric {
    ($name:expr, $better:expr, $warn:expr, $fail:expr, $description:expr $(,)?) => {
        Metric {
            name: $name,
            better: $better,
            warn: $warn,
            fail: $fail,
            description: $description,
        }
    };
}

/// The QC metrics `kind` computes from its run results.
pub fn qc_metrics(kind: InstrumentType) -> &'static [Metric] {
    use Better::*;
    use InstrumentType::*;
    match kind {
        PlateReader => &[
            metric!(
                "zPrime",
                Higher,
                0.5,
                0.0,
                "Z'-factor of the positive and negative controls",
            ),
            metric!(
                "controlCvPercent",
                Lower,
                10.0,
                20.0,
                "Largest coefficient of variation of a control group, in percent",
            ),
            metric!(
                "signalToBackground",
                Higher,
                3.0,
                2.0,
                "Mean positive control over mean blank",
            ),
        ],
        Qpcr => &[
            metric!(
                "ntcMinCt",
                Higher,
                38.0,
                35.0,
                "Lowest Ct among no-template controls (no amplification counts as the cycle count)",
            ),
            metric!(
                "replicateCtSd",
                Lower,
                0.3,
                0.5,
                "Largest standard deviation of Ct within a sample's replicates",
            ),
            metric!(
                "efficiencyDeviationPercent",
                Lower,
                10.0,
                20.0,
                "Distance of the standard curve's amplification efficiency from 100 %",
            ),
        ],
        _ => &[],
    }
}

/// A metric's thresholds: the type's defaults overridden by the
/// configuration's `qcThresholds`.
pub fn thresholds(kind: InstrumentType, configuration: &Value) -> Vec<Metric> {
    qc_metrics(kind)
        .iter()
        .map(|m| {
            let set = &configuration["qcThresholds"][m.name];
            Metric {
                warn: set["warn"].as_f64().unwrap_or(m.warn),
                fail: set["fail"].as_f64().unwrap_or(m.fail),
                ..*m
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn thresholds_default_and_override() {
        let t = thresholds(
            InstrumentType::Qpcr,
            &json!({"qcThresholds": {"ntcMinCt": {"fail": 30.0}}}),
        );
        let ntc = t.iter().find(|m| m.name == "ntcMinCt").expect("ntc");
        assert_eq!((ntc.warn, ntc.fail), (38.0, 30.0));
    }
}
