//! Instrument kinds and statuses, as stored (`snake_case`).

use serde::{Deserialize, Serialize};

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(value: &str) -> Option<$name> {
                Self::ALL.iter().copied().find(|v| v.as_str() == value)
            }

            /// The accepted values, for error messages.
            pub fn expected() -> String {
                Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
            }
        }
    };
}

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
