//! `PUT /api/v1/runs/:id/stop` (`runs:create`): ends an active run,
//! `{outcome?, reason?}`. `outcome` is `aborted` (default: the operator
//! stops it; a `stop` command is queued for a running instrument),
//! `completed` or `failed` (the operator records how a running run ended).
//! Only legal transitions happen (pending -> aborted | failed, running ->
//! completed | failed | aborted); anything else is 409. A pending run's
//! undelivered start command is withdrawn; the instrument goes back to idle.

use serde::Deserialize;
use serde_json::json;

use crate::audit::{self, EventType};
use crate::auth::{self, Permission};
use crate::ctx::Ctx;
use crate::domain::RunStatus;
use crate::envelope::Reply;
use crate::error::{ApiError, FieldError};
use crate::model::command::{self, DEFAULT_TIMEOUT_SECS, NewCommand};
use crate::model::instrument;
use crate::model::run::{self, Run};
use crate::platform::Platform;
use crate::request::Rq;

super::methods! {
    PUT => stop,
}

#[derive(Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
struct StopInput {
    /// How the run ended: `aborted` (the default: the operator stops it),
    /// `completed` or `failed`.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<StopOutcome>))]
    outcome: Option<String>,
    /// Why, at most 1000 characters (trimmed; recorded on the run and in
    /// the audit trail).
    reason: Option<String>,
}

/// How a stopped run ended (the document's name for `outcome`).
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
enum StopOutcome {
    /// The operator stops it.
    Aborted,
    /// A running run finished.
    Completed,
    Failed,
}

/// End an active run
///
/// Requires `runs:create`. The body is optional (no body: `aborted`). Only
/// legal transitions happen: a `pending` run may become `aborted` or
/// `failed`, a `running` one `completed`, `failed` or `aborted`; anything
/// else, or a run someone else ended first, is 409. Aborting a running run
/// queues a `stop` command for its instrument; a pending run's undelivered
/// `start` command is withdrawn; the instrument goes back to idle. Audited
/// (`RUN_STOPPED`).
#[cfg_attr(feature = "openapi", utoipa::path(put, path = "/api/v1/runs/{id}/stop",
    params(("id" = uuid::Uuid, Path, description = "The run")),
    request_body = Option<StopInput>,
    responses(
        (status = 200, description = "The ended run", body = crate::model::run::Run),
        (status = 409, description = "The run cannot move to this outcome (details name the legal ones)"))))]
async fn stop<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::RunsCreate)?;
    let id = rq.uuid_param("id")?;
    let input: StopInput = if rq.req.body().is_empty() {
        StopInput::default()
    } else {
        rq.json(ctx)?
    };
    let mut problems = Vec::new();
    let outcome = match input.outcome.as_deref() {
        None => RunStatus::Aborted,
        Some(raw) => match RunStatus::parse(raw).filter(|s| !s.is_active()) {
            Some(s) => s,
            None => {
                problems.push(FieldError::new(
                    "outcome",
                    "Must be one of: aborted, completed, failed",
                ));
                RunStatus::Aborted
            }
        },
    };
    let reason = input
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    if reason.is_some_and(|r| r.chars().count() > 1000) {
        problems.push(FieldError::new("reason", "Must be at most 1000 characters"));
    }
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    let scope = principal.scope();
    let db = ctx.db();
    let run = run::get(&db, &scope, id).await?;
    if !run.status.next().contains(&outcome) {
        return Err(illegal(&run, outcome));
    }
    let event = audit::Event {
        old_values: Some(json!({ "status": run.status })),
        new_values: Some(json!({ "status": outcome })),
        reason,
        metadata: json!({ "instrumentId": run.instrument_id }),
        ..audit::Event::by(ctx.new_uuid(), &principal, EventType::RunStopped, id)
    };
    let change = run::end(&scope, id, outcome, reason, &RunStatus::from_which(outcome));
    let mut statements = vec![
        event.record_change(rq, change)?,
        // An undelivered start is withdrawn.
        command::withdraw_start(&scope, id, outcome),
        instrument::idle_after_run(&scope, run.instrument_id, id, outcome),
    ];
    // A running instrument is told to stop.
    if run.status == RunStatus::Running && outcome == RunStatus::Aborted {
        let stop = NewCommand {
            id: ctx.new_uuid(),
            instrument_id: run.instrument_id,
            run_id: Some(id),
            command: "stop".into(),
            parameters: json!({ "reason": reason }),
            idempotency_key: format!("run-stop:{id}"),
            timeout_secs: DEFAULT_TIMEOUT_SECS,
            observed_status: run.instrument_status.as_str(),
        };
        statements.insert(1, stop.insert(&scope, principal.user_id));
    }
    let results = scope.batch(&db, statements).await?;
    if results.first().is_none_or(|r| r.rows.is_empty()) {
        // Someone else ended it first.
        let now = run::get(&db, &scope, id).await?;
        return Err(illegal(&now, outcome));
    }
    Reply::ok(run::get(&db, &scope, id).await?)
}

fn illegal(run: &Run, to: RunStatus) -> ApiError {
    ApiError::Conflict {
        message: format!(
            "A {} run cannot become {}",
            run.status.as_str(),
            to.as_str()
        ),
        details: vec![FieldError::new(
            "outcome",
            match run.status.next() {
                [] => "The run has already ended".to_owned(),
                next => format!(
                    "From {} a run may become: {}",
                    run.status.as_str(),
                    next.iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            },
        )],
    }
}
