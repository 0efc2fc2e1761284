//! The statuses of commands, maintenance and run data uploads, as stored
//! (or as their views compute them).

string_enum! {
    /// Where a control command is: `queued -> sent -> acknowledged ->
    /// completed | failed`; a queued or sent one past its deadline reads
    /// `expired`.
    CommandStatus {
        Queued => "queued",
        Sent => "sent",
        Acknowledged => "acknowledged",
        Completed => "completed",
        Failed => "failed",
        Expired => "expired",
    }
}

string_enum! {
    /// What kind of maintenance.
    MaintenanceKind {
        Calibration => "calibration",
        Preventive => "preventive",
        Repair => "repair",
        Inspection => "inspection",
    }
}

string_enum! {
    /// Where a maintenance item is; a scheduled item past its date reads
    /// `overdue` (never stored).
    MaintenanceStatus {
        Scheduled => "scheduled",
        Overdue => "overdue",
        Completed => "completed",
        Cancelled => "cancelled",
    }
}

impl MaintenanceStatus {
    /// Completed and cancelled items never change again.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            MaintenanceStatus::Completed | MaintenanceStatus::Cancelled
        )
    }
}

string_enum! {
    /// Where a run's data file is: being uploaded, recorded, or recorded
    /// with its bytes removed by retention.
    UploadStatus {
        Uploading => "uploading",
        Complete => "complete",
        Purged => "purged",
    }
}
