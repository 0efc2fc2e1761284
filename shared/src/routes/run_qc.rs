//! `GET /api/v1/runs/:id/qc` (`runs:view`): the run's QC report. Each
//! metric its instrument type computes is checked against the thresholds in
//! the instrument's configuration (`qcThresholds`, else the type's
//! defaults): `pass`, `warning`, `fail`, or `not_available` when the
//! results lack it, with the value and both thresholds; `dataQuality` sums
//! them up (`excellent`, `good`, `fair`, `poor`, `not_available`). Results
//! come from a parsed data file (`POST .../data?format=`).

use serde::Serialize;

use crate::auth::{self, Permission};
use crate::ctx::Ctx;
use crate::domain::{InstrumentType, qc};
use crate::envelope::Reply;
use crate::error::ApiError;
use crate::model::run;
use crate::platform::Platform;
use crate::request::Rq;

super::methods! {
    GET => report,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = RunQcReport))]
#[serde(rename_all = "camelCase")]
struct QcView {
    run_id: uuid::Uuid,
    #[cfg_attr(feature = "openapi", schema(value_type = InstrumentType))]
    instrument_type: String,
    #[serde(flatten)]
    report: qc::Report,
}

/// A run's QC report
///
/// Requires `runs:view`. Each metric the instrument type computes, checked
/// against the thresholds in the instrument's configuration
/// (`qcThresholds`, else the type's defaults): `pass`, `warning`, `fail`,
/// or `not_available` when the run's results lack it; `dataQuality` sums
/// them up. Results come from a data file parsed on upload
/// (`POST /api/v1/runs/{id}/data?format=`); without them every check is
/// `not_available`.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/api/v1/runs/{id}/qc",
    params(("id" = uuid::Uuid, Path, description = "The run")),
    responses((status = 200, description = "The QC report", body = QcView))))]
async fn report<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::RunsView)?;
    let id = rq.uuid_param("id")?;
    let source = run::qc_source(&ctx.db(), &principal.scope(), id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let kind = InstrumentType::parse(&source.instrument_type).ok_or_else(|| {
        ApiError::internal(format!(
            "unknown instrument type {}",
            source.instrument_type
        ))
    })?;
    let thresholds = qc::thresholds(kind, &source.configuration);
    Reply::ok(QcView {
        run_id: id,
        instrument_type: source.instrument_type,
        report: qc::evaluate(source.results.as_ref(), &thresholds),
    })
}
