//! Runs, run data, QC and signatures; the audit trail, retention and the scheduled jobs: `runs*`, `run_*`, `audit_*`, `retention_run`, `job_*`.

#[allow(unused_imports)]
use crate::routes;

use crate::audit::export::{ExportedEvent, Manifest, ManifestKey, Trailer, TrailerError};

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        routes::runs::list,
        routes::runs::start,
        routes::runs_item::show,
        routes::run_stop::stop,
        routes::run_data::download,
        routes::run_data::upload,
        routes::run_qc::report,
        routes::run_signatures::list,
        routes::run_signatures::sign,
        routes::audit_log::log,
        routes::audit_events::list,
        routes::audit_export::export,
        routes::audit_verify::verify,
        routes::retention_run::run,
        routes::job_send_mail::tick,
        routes::job_retention::tick,
    ),
    // The lines of an audit export (its JSON Lines are not a schema of
    // their own).
    components(schemas(ExportedEvent, Trailer, Manifest, ManifestKey, TrailerError)),
)]
pub(super) struct Paths;
