//! Instrument kinds and statuses, as stored (`snake_case`).

string_enum! {
    /// What kind of instrument it is.
    InstrumentType {
        DnaSequencer => "dna_sequencer",
        LiquidHandler => "liquid_handler",
        Hplc => "hplc",
        Qpcr => "qpcr",
        PlateReader => "plate_reader",
        Centrifuge => "centrifuge",
        Incubator => "incubator",
        Freezer => "freezer",
        Spectrophotometer => "spectrophotometer",
        Microscope => "microscope",
        MassSpectrometer => "mass_spectrometer",
        FlowCytometer => "flow_cytometer",
    }
}

impl InstrumentType {
    /// Its name for people.
    pub fn label(self) -> &'static str {
        use InstrumentType::*;
        match self {
            DnaSequencer => "DNA sequencer",
            LiquidHandler => "Liquid handler",
            Hplc => "HPLC",
            Qpcr => "qPCR",
            PlateReader => "Plate reader",
            Centrifuge => "Centrifuge",
            Incubator => "Incubator",
            Freezer => "Freezer",
            Spectrophotometer => "Spectrophotometer",
            Microscope => "Microscope",
            MassSpectrometer => "Mass spectrometer",
            FlowCytometer => "Flow cytometer",
        }
    }
}

string_enum! {
    /// What an instrument is doing.
    InstrumentStatus {
        Online => "online",
        Offline => "offline",
        Idle => "idle",
        Running => "running",
        Error => "error",
        Maintenance => "maintenance",
    }
}

string_enum! {
    /// Where a run is in its life.
    RunStatus {
        Pending => "pending",
        Running => "running",
        Completed => "completed",
        Failed => "failed",
        Aborted => "aborted",
    }
}

impl RunStatus {
    /// The statuses a run may move to from this one.
    pub fn next(self) -> &'static [RunStatus] {
        use RunStatus::*;
        match self {
            Pending => &[Running, Failed, Aborted],
            Running => &[Completed, Failed, Aborted],
            Completed | Failed | Aborted => &[],
        }
    }

    /// Statuses a run may be in to move to `to`.
    pub fn from_which(to: RunStatus) -> Vec<RunStatus> {
        RunStatus::ALL
            .iter()
            .copied()
            .filter(|s| s.next().contains(&to))
            .collect()
    }

    pub fn is_active(self) -> bool {
        matches!(self, RunStatus::Pending | RunStatus::Running)
    }
}

#[cfg(test)]
mod tests {
    use super::RunStatus::*;
    use super::*;

    #[test]
    fn run_transitions() {
        assert_eq!(RunStatus::from_which(Aborted), [Pending, Running]);
        assert_eq!(RunStatus::from_which(Completed), [Running]);
        assert!(RunStatus::from_which(Pending).is_empty());
        for s in RunStatus::ALL {
            assert_eq!(s.is_active(), !s.next().is_empty());
        }
    }
}
