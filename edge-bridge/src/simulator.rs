//! Simulated instruments, so a lab without hardware (and the tests) see
//! live data: each type reports the signals its real counterpart would,
//! around plausible setpoints with noise, a run that progresses, and faults
//! that can be injected (drift, spikes, a stuck sensor, going offline).
//! Seeded, so a run of the simulator is reproducible.

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

/// One sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub metric: &'static str,
    pub value: f64,
    pub unit: &'static str,
}

/// A signal: its name, unit, setpoint and noise (standard-ish deviation).
#[derive(Debug, Clone, Copy)]
struct Signal {
    metric: &'static str,
    unit: &'static str,
    setpoint: f64,
    noise: f64,
}

const fn signal(metric: &'static str, unit: &'static str, setpoint: f64, noise: f64) -> Signal {
    Signal {
        metric,
        unit,
        setpoint,
        noise,
    }
}

/// The signals of each instrument type (the API's type names).
fn signals(kind: &str) -> Option<&'static [Signal]> {
    Some(match kind {
        "freezer" => {
            const S: &[Signal] = &[
                signal("temperature", "C", -80.0, 0.3),
                signal("compressorDutyPercent", "%", 45.0, 3.0),
            ];
            S
        }
        "incubator" => {
            const S: &[Signal] = &[
                signal("temperature", "C", 37.0, 0.1),
                signal("co2Percent", "%", 5.0, 0.05),
                signal("humidityPercent", "%", 95.0, 0.5),
            ];
            S
        }
        "centrifuge" => {
            const S: &[Signal] = &[
                signal("temperature", "C", 4.0, 0.2),
                signal("speedRpm", "rpm", 0.0, 0.0),
                signal("vibrationMmS", "mm/s", 0.8, 0.1),
            ];
            S
        }
        "hplc" => {
            const S: &[Signal] = &[
                signal("pressureBar", "bar", 120.0, 2.0),
                signal("flowRateMlMin", "mL/min", 1.0, 0.01),
                signal("columnTemperature", "C", 30.0, 0.1),
            ];
            S
        }
        "qpcr" => {
            const S: &[Signal] = &[
                signal("blockTemperature", "C", 25.0, 0.1),
                signal("lidTemperature", "C", 105.0, 0.2),
            ];
            S
        }
        "plate_reader" => {
            const S: &[Signal] = &[signal("temperature", "C", 25.0, 0.2)];
            S
        }
        "dna_sequencer" => {
            const S: &[Signal] = &[
                signal("flowCellTemperature", "C", 30.0, 0.1),
                signal("fluidicsPressurePsi", "psi", 12.0, 0.3),
            ];
            S
        }
        "liquid_handler" => {
            const S: &[Signal] = &[
                signal("deckTemperature", "C", 22.0, 0.3),
                signal("vibrationMmS", "mm/s", 0.3, 0.05),
            ];
            S
        }
        "spectrophotometer" => {
            const S: &[Signal] = &[
                signal("temperature", "C", 25.0, 0.2),
                signal("lampIntensityPercent", "%", 98.0, 0.3),
            ];
            S
        }
        "microscope" => {
            const S: &[Signal] = &[
                signal("stageTemperature", "C", 37.0, 0.1),
                signal("vibrationMmS", "mm/s", 0.05, 0.01),
            ];
            S
        }
        "mass_spectrometer" => {
            const S: &[Signal] = &[
                signal("vacuumMbar", "mbar", 2.0e-7, 1.0e-8),
                signal("sourceTemperature", "C", 300.0, 1.0),
            ];
            S
        }
        "flow_cytometer" => {
            const S: &[Signal] = &[
                signal("sheathPressurePsi", "psi", 30.0, 0.3),
                signal("laserPowerMw", "mW", 100.0, 0.5),
            ];
            S
        }
        _ => return None,
    })
}

/// What can go wrong with a simulated instrument.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    /// The first signal walks away from its setpoint by `per_tick` each tick.
    Drift { per_tick: f64 },
    /// The next sample of the first signal is far off, once.
    Spike,
    /// Every signal repeats its last value.
    Stuck,
    /// Nothing is reported.
    Offline,
}

#[derive(Debug, thiserror::Error)]
#[error("no simulator for instrument type {0}")]
pub struct UnknownType(pub String);

/// One simulated instrument.
pub struct Simulated {
    signals: &'static [Signal],
    rng: StdRng,
    fault: Option<Fault>,
    drift: f64,
    last: Vec<f64>,
    /// Percent of the current run, when one is running.
    run: Option<f64>,
    /// How much a run advances per tick, in percent.
    run_step: f64,
    /// Setpoints changed by a command, by signal (else the signal's own).
    setpoints: Vec<Option<f64>>,
}

impl Simulated {
    pub fn new(kind: &str, seed: u64) -> Result<Simulated, UnknownType> {
        let signals = signals(kind).ok_or_else(|| UnknownType(kind.to_owned()))?;
        Ok(Simulated {
            signals,
            rng: StdRng::seed_from_u64(seed),
            fault: None,
            drift: 0.0,
            last: signals.iter().map(|s| s.setpoint).collect(),
            run: None,
            run_step: 2.0,
            setpoints: vec![None; signals.len()],
        })
    }

    /// Starts a run that completes after `ticks` ticks.
    pub fn start_run(&mut self, ticks: u32) {
        self.run = Some(0.0);
        self.run_step = 100.0 / f64::from(ticks.max(1));
    }

    /// Stops the run where it is.
    pub fn stop_run(&mut self) {
        self.run = None;
    }

    pub fn running(&self) -> bool {
        self.run.is_some()
    }

    /// Holds `metric` at `value` from the next sample on (a setpoint
    /// command); false when the instrument has no such signal.
    pub fn set_setpoint(&mut self, metric: &str, value: f64) -> bool {
        match self.signals.iter().position(|s| s.metric == metric) {
            Some(i) if value.is_finite() => {
                self.setpoints[i] = Some(value);
                true
            }
            _ => false,
        }
    }

    pub fn inject(&mut self, fault: Option<Fault>) {
        self.fault = fault;
        if !matches!(fault, Some(Fault::Drift { .. })) {
            self.drift = 0.0;
        }
    }

    /// The next sample of every signal (and run progress while running).
    pub fn tick(&mut self) -> Vec<Reading> {
        if self.fault == Some(Fault::Offline) {
            return Vec::new();
        }
        if let Some(Fault::Drift { per_tick }) = self.fault {
            self.drift += per_tick;
        }
        let running = self.run.is_some();
        let mut out = Vec::with_capacity(self.signals.len() + 1);
        for (i, s) in self.signals.iter().enumerate() {
            let value = if self.fault == Some(Fault::Stuck) {
                self.last[i]
            } else {
                let mut setpoint = self.setpoints[i].unwrap_or(s.setpoint);
                if running && s.metric == "speedRpm" {
                    setpoint = 12_000.0;
                }
                let noise = if s.noise > 0.0 {
                    self.rng.random_range(-s.noise..s.noise)
                } else {
                    0.0
                };
                let mut value = setpoint + noise;
                if i == 0 {
                    value += self.drift;
                    if self.fault == Some(Fault::Spike) {
                        value += s.noise.max(1.0) * 25.0;
                    }
                }
                value
            };
            self.last[i] = value;
            out.push(Reading {
                metric: s.metric,
                value,
                unit: s.unit,
            });
        }
        if self.fault == Some(Fault::Spike) {
            self.fault = None;
        }
        if let Some(progress) = self.run {
            let next = (progress + self.run_step).min(100.0);
            out.push(Reading {
                metric: "runProgressPercent",
                value: next,
                unit: "%",
            });
            self.run = if next >= 100.0 { None } else { Some(next) };
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_setpoint_command_moves_its_signal() {
        let mut sim = Simulated::new("freezer", 3).expect("freezer");
        assert!(sim.set_setpoint("temperature", -70.0));
        assert!(!sim.set_setpoint("pressureBar", 1.0));
        let t = sim
            .tick()
            .into_iter()
            .find(|r| r.metric == "temperature")
            .expect("a temperature");
        assert!((t.value + 70.0).abs() <= 0.3, "{}", t.value);
    }

    #[test]
    fn the_limits_charts_draw_are_of_metrics_the_simulator_reports() {
        use shared::domain::InstrumentType;
        for kind in InstrumentType::ALL {
            let reported = signals(kind.as_str()).unwrap_or_default();
            for limit in shared::domain::schema::metric_limits(*kind) {
                assert!(
                    reported.iter().any(|s| s.metric == limit.metric),
                    "{kind:?}: {} bounds {}, which the simulator does not report",
                    limit.field,
                    limit.metric
                );
            }
        }
    }

    const TYPES: [&str; 12] = [
        "dna_sequencer",
        "liquid_handler",
        "hplc",
        "qpcr",
        "plate_reader",
        "centrifuge",
        "incubator",
        "freezer",
        "spectrophotometer",
        "microscope",
        "mass_spectrometer",
        "flow_cytometer",
    ];

    #[test]
    fn every_type_reports_plausible_named_signals() {
        for kind in TYPES {
            let mut sim = Simulated::new(kind, 7).expect(kind);
            for _ in 0..200 {
                let readings = sim.tick();
                assert!(!readings.is_empty(), "{kind}");
                for r in readings {
                    let s = signals(kind)
                        .and_then(|s| s.iter().find(|s| s.metric == r.metric))
                        .expect("known");
                    assert!(
                        (r.value - s.setpoint).abs() <= s.noise + 1e-12,
                        "{kind} {r:?}"
                    );
                    assert!(
                        r.metric
                            .chars()
                            .next()
                            .is_some_and(|c| c.is_ascii_alphabetic())
                            && r.metric.chars().all(|c| c.is_ascii_alphanumeric()),
                        "{}",
                        r.metric
                    );
                }
            }
        }
        assert!(Simulated::new("toaster", 1).is_err());
    }

    #[test]
    fn the_same_seed_gives_the_same_signals() {
        let mut a = Simulated::new("hplc", 42).expect("hplc");
        let mut b = Simulated::new("hplc", 42).expect("hplc");
        for _ in 0..50 {
            assert_eq!(a.tick(), b.tick());
        }
    }

    #[test]
    fn runs_progress_to_completion() {
        let mut sim = Simulated::new("centrifuge", 3).expect("centrifuge");
        sim.start_run(4);
        let mut progress = Vec::new();
        while sim.running() {
            let readings = sim.tick();
            let speed = readings
                .iter()
                .find(|r| r.metric == "speedRpm")
                .map(|r| r.value);
            assert_eq!(speed, Some(12_000.0));
            progress.extend(
                readings
                    .iter()
                    .filter(|r| r.metric == "runProgressPercent")
                    .map(|r| r.value),
            );
        }
        assert_eq!(progress, [25.0, 50.0, 75.0, 100.0]);
        let idle = sim.tick();
        assert!(idle.iter().all(|r| r.metric != "runProgressPercent"));
        assert_eq!(
            idle.iter()
                .find(|r| r.metric == "speedRpm")
                .map(|r| r.value),
            Some(0.0)
        );
    }

    #[test]
    fn faults_show_in_the_signals() {
        let mut sim = Simulated::new("freezer", 5).expect("freezer");
        sim.inject(Some(Fault::Drift { per_tick: 0.5 }));
        let drifted: Vec<f64> = (0..20).map(|_| sim.tick()[0].value).collect();
        assert!(drifted[19] > -80.0 + 9.0, "{drifted:?}");
        sim.inject(Some(Fault::Spike));
        assert!(sim.tick()[0].value > -80.0 + 20.0);
        assert!((sim.tick()[0].value + 80.0).abs() < 1.0, "a spike is once");
        sim.inject(Some(Fault::Stuck));
        let stuck = sim.tick();
        assert_eq!(stuck, sim.tick());
        sim.inject(Some(Fault::Offline));
        assert!(sim.tick().is_empty());
        sim.inject(None);
        assert_eq!(sim.tick().len(), 2);
    }
}
