//! `PUT /api/v1/runs/:id/stop` (`runs:create`): ends an active run,
//! `{outcome?, reason?}`. `outcome` is `aborted` (default: the operator
//! stops it; a `stop` command is queued for a running instrument),
//! `completed` or `failed` (the operator records how a running run ended).
//! Only legal transitions happen (pending -> aborted | failed, running ->
//! completed | failed | aborted); anything else is 409. A pending run's
//! undelivered start command is withdrawn; the instrument goes back to idle.

use serde::Deserialize;
use serde_json::json;

use super::instrument_control::NewCommand;
use super::runs::{self, RunView};
use crate::audit;
use crate::auth::{self, Permission};
use crate::ctx::Ctx;
use crate::db::statement;
use crate::domain::RunStatus;
use crate::envelope::Reply;
use crate::error::{ApiError, FieldError};
use crate::params;
use crate::platform::Platform;
use crate::request::Rq;

super::methods! {
    PUT => stop,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct StopInput {
    outcome: Option<String>,
    reason: Option<String>,
}

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
    let run = runs::load(ctx, &principal, id).await?;
    if !run.status.next().contains(&outcome) {
        return Err(illegal(&run, outcome));
    }
    let from: Vec<&str> = RunStatus::from_which(outcome)
        .into_iter()
        .map(RunStatus::as_str)
        .collect();
    let event = audit::Event {
        old_values: Some(json!({ "status": run.status })),
        new_values: Some(json!({ "status": outcome })),
        reason,
        ..audit::Event::by(
            ctx.new_uuid(),
            &principal,
            "RUN_STOPPED",
            "Run stopped",
            ("run", id),
        )
    };
    let change = statement(
        "UPDATE runs SET status = $3, end_reason = $4, completed_at = now(), version = version + 1, updated_at = now() \
         WHERE id = $1 AND organization_id = $2 AND status = ANY($5::text[]) RETURNING id, instrument_id",
        params![
            id,
            principal.organization_id,
            outcome.as_str(),
            reason,
            serde_json::to_value(&from).map_err(ApiError::internal)?,
        ],
    );
    let mut statements = vec![
        event.record_change(rq, change),
        // An undelivered start is withdrawn.
        statement(
            "UPDATE instrument_commands SET status = 'failed', error = 'Run stopped before the instrument started it', \
             updated_at = now(), completed_at = now() \
             WHERE organization_id = $2 AND run_id = $1 AND command = 'start' AND status IN ('queued', 'sent') \
               AND EXISTS (SELECT 1 FROM runs WHERE id = $1 AND status = $3)",
            params![id, principal.organization_id, outcome.as_str()],
        ),
        statement(
            "UPDATE instruments SET status = 'idle', updated_at = now() \
             WHERE organization_id = $2 AND id = $3 AND status = 'running' \
               AND EXISTS (SELECT 1 FROM runs WHERE id = $1 AND status = $4)",
            params![
                id,
                principal.organization_id,
                run.instrument_id,
                outcome.as_str()
            ],
        ),
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
            timeout_secs: super::instrument_control::DEFAULT_TIMEOUT_SECS,
            observed_status: run.instrument_status.as_str(),
        };
        statements.insert(1, stop.insert(&principal));
    }
    let results = ctx.db().batch(statements, Default::default()).await?;
    if results.first().is_none_or(|r| r.rows.is_empty()) {
        // Someone else ended it first.
        let now = runs::load(ctx, &principal, id).await?;
        return Err(illegal(&now, outcome));
    }
    Reply::ok(runs::load(ctx, &principal, id).await?)
}

fn illegal(run: &RunView, to: RunStatus) -> ApiError {
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
