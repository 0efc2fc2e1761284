//! Storing what bridges send and handing them their commands: the one
//! implementation behind `POST /api/v1/bridges/ingest`, the command poll and
//! the hub.

use std::collections::HashSet;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    Batch, BatchAck, CommandOrder, CommandState, InstrumentStatus, Item, REDELIVER_AFTER_SECS,
    Rejected,
};
use crate::audit::{self, EventType};
use crate::auth::{Permission, Principal};
use crate::ctx::Ctx;
use crate::db::Statement;
use crate::domain::RunStatus;
use crate::error::{ApiError, FieldError};
use crate::model::bridge::{self, Position};
use crate::model::{Scope, command, instrument, reading, rows, run};
use crate::platform::Platform;
use crate::request::Rq;

/// The bridge a request comes from.
pub type Bridge = bridge::Identity;

/// The bridge whose key `principal` used; 403 for anyone else (people and
/// other keys do not send readings or take commands).
pub async fn bridge_of<P: Platform>(
    ctx: &Ctx<P>,
    principal: &Principal,
) -> Result<Bridge, ApiError> {
    principal.require(Permission::InstrumentsControl)?;
    let forbidden = || ApiError::Forbidden {
        caller: Some(principal.caller()),
    };
    let Some(key) = principal.api_key_id else {
        return Err(forbidden());
    };
    bridge::by_key(&ctx.db(), &principal.scope(), key)
        .await?
        .ok_or_else(forbidden)
}

#[derive(Deserialize)]
struct Acked {
    acked_sequence: i64,
}

#[derive(Deserialize)]
struct Seq {
    sequence: i64,
}

fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Stores `batch` from `bridge`: its new records (readings, command
/// outcomes), the heartbeat (the bridge's version, queue depth and
/// instruments; their `last_seen_at` and status, status changes audited),
/// all in one transaction. Records up to the stream's acknowledged sequence
/// are skipped; a batch that would leave a gap is 409 with the sequence
/// expected in `details`.
pub async fn ingest<P: Platform>(
    ctx: &Ctx<P>,
    rq: &mut Rq,
    principal: &Principal,
    bridge: Bridge,
    batch: &Batch,
) -> Result<BatchAck, ApiError> {
    batch.validate().map_err(ApiError::Validation)?;
    let scope = Scope::bridge(bridge.organization_id);
    let (first, last) = batch.span().unwrap_or((1, 0));
    // Every statement after the first acts only when the batch continues the
    // stream: nothing is skipped, nothing stored twice.
    let at = Position {
        bridge_id: bridge.id,
        stream: batch.stream,
        first: int(first),
    };

    // The stream's row, locked for the transaction (a stream the cloud has
    // not seen starts where its first batch starts); a heartbeat alone only
    // reads it.
    let mut statements = vec![if last >= first {
        bridge::lock_stream(&scope, &at)
    } else {
        bridge::read_stream(&scope, &at)
    }];

    // The instruments the batch names: one no bridge serves yet is bound to
    // this one, the first to report it (audited); one another bridge
    // serves is left alone (its readings are rejected, its status ignored).
    let named = named_instruments(batch);
    let known = if named.is_empty() {
        Vec::new()
    } else {
        instrument::statuses(&ctx.db(), &scope, &named).await?
    };
    for unbound in known.iter().filter(|k| k.bridge_id.is_none()) {
        let event = audit::Event {
            new_values: Some(json!({ "bridgeId": bridge.id })),
            metadata: json!({ "source": "bridge" }),
            ..audit::Event::by(
                ctx.new_uuid(),
                principal,
                EventType::InstrumentBoundToBridge,
                unbound.id,
            )
        };
        statements.push(event.record_change(
            rq,
            instrument::bind_to_bridge(&scope, unbound.id, bridge.id),
        )?);
    }
    let served: Vec<instrument::Known> = known
        .into_iter()
        .filter(|k| k.bridge_id.is_none_or(|b| b == bridge.id))
        .collect();

    let readings = readings_of(batch);
    let readings_at = (!readings.is_empty()).then_some(statements.len());
    if !readings.is_empty() {
        statements.push(reading::insert_continuing(
            &scope,
            &at,
            Value::Array(readings),
        ));
    }
    let outcomes_of: Vec<uuid::Uuid> = batch
        .records
        .iter()
        .filter_map(|r| match &r.item {
            Item::CommandOutcome(o) => Some(o.command_id),
            Item::Reading(_) => None,
        })
        .collect();
    let starts = if outcomes_of.is_empty() {
        Vec::new()
    } else {
        run::started_by(&ctx.db(), &scope, &outcomes_of).await?
    };
    let mut outcomes = Vec::new();
    for record in &batch.records {
        if let Item::CommandOutcome(outcome) = &record.item {
            outcomes.push((record.seq, statements.len()));
            let target = starts.iter().find(|s| s.command_id == outcome.command_id);
            statements.push(record_outcome(
                ctx,
                rq,
                principal,
                &scope,
                &at,
                record.seq,
                outcome,
                target.map(|t| t.instrument_id),
            )?);
            if let Some(start) = target
                && let Some(run_id) = start.run_id
            {
                statements.push(run_started(
                    ctx, rq, principal, &scope, start, run_id, outcome,
                )?);
            }
        }
    }

    if last >= first {
        statements.push(bridge::advance_stream(&scope, &at, int(last)));
    }
    statements.extend(heartbeat(
        ctx, rq, principal, &scope, bridge, batch, &served,
    )?);

    let results = scope.batch(&ctx.db(), statements).await?;
    let acked: Vec<Acked> = rows(&results, 0)?;
    let before = acked.first().map_or(0, |a| a.acked_sequence.max(0) as u64);
    if last >= first && first > before + 1 {
        return Err(ApiError::Conflict {
            message: format!(
                "The stream continues at sequence {}; this batch starts at {first}",
                before + 1
            ),
            details: vec![FieldError::new("records[0].seq", format!("{}", before + 1))],
        });
    }

    let stored_readings: Vec<Seq> = match readings_at {
        Some(at) => rows(&results, at)?,
        None => Vec::new(),
    };
    let stored: HashSet<u64> = stored_readings
        .iter()
        .map(|s| s.sequence as u64)
        .chain(
            outcomes
                .iter()
                .filter(|(_, at)| results[*at].row_count.unwrap_or(0) > 0)
                .map(|(seq, _)| *seq),
        )
        .collect();
    Ok(acknowledge(batch, before, last, &stored))
}

/// The instruments a batch names (its heartbeat's and its readings'), once
/// each.
fn named_instruments(batch: &Batch) -> Vec<String> {
    let mut named: Vec<String> = batch
        .heartbeat
        .instruments
        .iter()
        .map(|i| i.id.to_string())
        .chain(batch.records.iter().filter_map(|r| match &r.item {
            Item::Reading(reading) => Some(reading.instrument_id.to_string()),
            Item::CommandOutcome(_) => None,
        }))
        .collect();
    named.sort_unstable();
    named.dedup();
    named
}

/// The batch's readings, as `reading::insert_continuing` takes them.
fn readings_of(batch: &Batch) -> Vec<Value> {
    batch
        .records
        .iter()
        .filter_map(|r| match &r.item {
            Item::Reading(reading) => Some(json!({
                "seq": r.seq,
                "instrument_id": reading.instrument_id,
                "metric": reading.metric,
                "value": reading.value,
                "unit": reading.unit,
                "recorded_at": reading.recorded_at,
            })),
            Item::CommandOutcome(_) => None,
        })
        .collect()
}

/// A command's outcome, audited, if the batch continues the stream at `at`
/// (`instrument_id`, the command's instrument, names it in the event).
/// Forward only: sent -> acknowledged -> completed | failed (a fast command
/// may skip acknowledged).
#[allow(clippy::too_many_arguments)]
fn record_outcome<P: Platform>(
    ctx: &Ctx<P>,
    rq: &Rq,
    principal: &Principal,
    scope: &Scope,
    at: &Position,
    seq: u64,
    outcome: &super::CommandOutcome,
    instrument_id: Option<uuid::Uuid>,
) -> Result<Statement, ApiError> {
    let event_type = match outcome.state {
        CommandState::Acknowledged => EventType::InstrumentCommandAcknowledged,
        CommandState::Completed => EventType::InstrumentCommandCompleted,
        CommandState::Failed => EventType::InstrumentCommandFailed,
    };
    let event = audit::Event {
        new_values: Some(json!({
            "status": outcome.state.as_str(),
            "result": outcome.result,
            "error": outcome.error,
        })),
        metadata: json!({
            "bridgeId": at.bridge_id,
            "stream": at.stream,
            "sequence": seq,
            "instrumentId": instrument_id,
        }),
        ..audit::Event::by(ctx.new_uuid(), principal, event_type, outcome.command_id)
    };
    let change = command::record_outcome(
        scope,
        at,
        outcome.command_id,
        &command::Outcome {
            state: outcome.state.as_str(),
            at: outcome.at.get(),
            result: outcome.result.as_ref(),
            error: outcome.error.as_deref(),
            seq: int(seq),
        },
    );
    event.record_change(rq, change)
}

/// What a run's start command's outcome (recorded just before, in the same
/// transaction) does to the run: acknowledged (the bridge handed it to the
/// instrument) or completed, a pending run is running (audited as
/// `RUN_RUNNING`); failed, the run failed (`RUN_FINISHED`, the
/// instrument's error its reason), even if the acknowledgement had already
/// made it running.
fn run_started<P: Platform>(
    ctx: &Ctx<P>,
    rq: &Rq,
    principal: &Principal,
    scope: &Scope,
    start: &run::Started,
    run_id: uuid::Uuid,
    outcome: &super::CommandOutcome,
) -> Result<Statement, ApiError> {
    let at = outcome.at.get();
    let (event_type, change, old_values, new_values, reason) = match outcome.state {
        CommandState::Acknowledged | CommandState::Completed => (
            EventType::RunRunning,
            run::start_taken(scope, run_id, start.command_id, at),
            Some(json!({ "status": RunStatus::Pending })),
            json!({ "status": RunStatus::Running, "startedAt": outcome.at }),
            None,
        ),
        CommandState::Failed => {
            let reason = format!(
                "The instrument refused the start: {}",
                outcome.error.as_deref().unwrap_or("no reason given")
            );
            (
                EventType::RunFinished,
                run::start_refused(scope, run_id, start.command_id, at, &reason),
                // Pending, or running on the acknowledgement alone.
                None,
                json!({ "status": RunStatus::Failed, "completedAt": outcome.at }),
                Some(reason),
            )
        }
    };
    let event = audit::Event {
        old_values,
        new_values: Some(new_values),
        reason: reason.as_deref(),
        metadata: json!({
            "source": "bridge",
            "commandId": start.command_id,
            "instrumentId": start.instrument_id,
        }),
        ..audit::Event::by(ctx.new_uuid(), principal, event_type, run_id)
    };
    event.record_change(rq, change)
}

/// The reply to a batch: records up to `before` were duplicates; of the
/// rest, those not `stored` are rejected with why.
fn acknowledge(batch: &Batch, before: u64, last: u64, stored: &HashSet<u64>) -> BatchAck {
    let mut rejected = Vec::new();
    let mut duplicates = 0;
    for record in &batch.records {
        if record.seq <= before {
            duplicates += 1;
        } else if !stored.contains(&record.seq) {
            rejected.push(Rejected {
                seq: record.seq,
                reason: match record.item {
                    Item::Reading(_) => {
                        "no such instrument in this organization, or another bridge serves it"
                            .into()
                    }
                    Item::CommandOutcome(_) => {
                        "no such command handed to this bridge, or it has already finished".into()
                    }
                },
            });
        }
    }
    BatchAck {
        stream: batch.stream,
        acked: before.max(last),
        stored: stored.len() as u64,
        duplicates,
        rejected,
    }
}

/// The heartbeat's statements: the bridge's row, the instruments it reaches
/// and serves (`last_seen_at`), and each of those whose status it reports
/// changed (audited as `INSTRUMENT_STATUS_CHANGED`; an instrument in
/// maintenance stays there). `served` are the named instruments this
/// bridge serves or is binding now, with their current status.
fn heartbeat<P: Platform>(
    ctx: &Ctx<P>,
    rq: &mut Rq,
    principal: &Principal,
    scope: &Scope,
    bridge: Bridge,
    batch: &Batch,
    served: &[instrument::Known],
) -> Result<Vec<Statement>, ApiError> {
    let hb = &batch.heartbeat;
    let reported: Vec<String> = hb.instruments.iter().map(|i| i.id.to_string()).collect();
    let mut statements = vec![bridge::record_heartbeat(
        scope,
        bridge.id,
        &bridge::Heartbeat {
            version: hb.version.as_deref(),
            hostname: hb.hostname.as_deref(),
            queue_depth: int(hb.queue_depth),
            instruments: &reported,
        },
    )];
    let mut seen: Vec<String> = hb
        .instruments
        .iter()
        .filter(|i| i.status != InstrumentStatus::Offline)
        .map(|i| i.id.to_string())
        .collect();
    for record in &batch.records {
        if let Item::Reading(r) = &record.item {
            seen.push(r.instrument_id.to_string());
        }
    }
    seen.sort_unstable();
    seen.dedup();
    if !seen.is_empty() {
        statements.push(instrument::mark_seen(scope, bridge.id, &seen));
    }
    for state in &hb.instruments {
        let Some(current) = served.iter().find(|k| k.id == state.id) else {
            continue;
        };
        if current.status == state.status || current.status == InstrumentStatus::Maintenance {
            continue;
        }
        let event = audit::Event {
            old_values: Some(json!({ "status": current.status })),
            new_values: Some(json!({ "status": state.status })),
            metadata: json!({ "source": "bridge", "bridgeId": bridge.id }),
            ..audit::Event::by(
                ctx.new_uuid(),
                principal,
                EventType::InstrumentStatusChanged,
                state.id,
            )
        };
        statements.push(event.record_change(
            rq,
            instrument::set_reported_status(
                scope,
                state.id,
                bridge.id,
                state.status,
                current.status,
            ),
        )?);
        if current.status == InstrumentStatus::Running
            && let Some(run_id) = current.running_run
            && let Some((outcome, reason)) = match state.status {
                InstrumentStatus::Idle | InstrumentStatus::Online => {
                    Some((RunStatus::Completed, "The instrument finished the run"))
                }
                InstrumentStatus::Error => {
                    Some((RunStatus::Failed, "The instrument reported an error"))
                }
                // Offline: the bridge lost it; the run may still be going.
                _ => None,
            }
        {
            let event = audit::Event {
                old_values: Some(json!({ "status": RunStatus::Running })),
                new_values: Some(json!({ "status": outcome })),
                reason: Some(reason),
                metadata: json!({
                    "source": "bridge",
                    "bridgeId": bridge.id,
                    "instrumentId": state.id,
                    "instrumentStatus": state.status,
                }),
                ..audit::Event::by(ctx.new_uuid(), principal, EventType::RunFinished, run_id)
            };
            statements.push(event.record_change(
                rq,
                run::end_reported(scope, run_id, state.id, bridge.id, outcome, reason),
            )?);
        }
    }
    Ok(statements)
}

/// Hands `bridge` the commands waiting for its instruments (those its last
/// heartbeat reported), oldest first, marking them `sent` (audited as
/// `INSTRUMENT_COMMAND_SENT`). A command sent to it but not acknowledged
/// within [`REDELIVER_AFTER_SECS`] is handed out again; the bridge knows
/// the ids it has already run.
pub async fn take_commands<P: Platform>(
    ctx: &Ctx<P>,
    rq: &mut Rq,
    principal: &Principal,
    bridge: Bridge,
    limit: i64,
) -> Result<Vec<CommandOrder>, ApiError> {
    let scope = Scope::bridge(bridge.organization_id);
    let db = ctx.db();
    let candidates =
        command::waiting_for(&db, &scope, bridge.id, REDELIVER_AFTER_SECS, limit).await?;
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let statements = candidates
        .iter()
        .map(|c| {
            let event = audit::Event {
                new_values: Some(json!({ "status": "sent", "bridgeId": bridge.id })),
                metadata: json!({ "instrumentId": c.instrument_id }),
                ..audit::Event::by(
                    ctx.new_uuid(),
                    principal,
                    EventType::InstrumentCommandSent,
                    c.id,
                )
            };
            event.record_change(
                rq,
                command::mark_sent(&scope, c.id, bridge.id, REDELIVER_AFTER_SECS),
            )
        })
        .collect::<Result<Vec<Statement>, ApiError>>()?;
    let results = scope.batch(&db, statements).await?;
    Ok(candidates
        .into_iter()
        .zip(results)
        .filter(|(_, r)| r.row_count.unwrap_or(0) > 0)
        .map(|(c, _)| CommandOrder {
            id: c.id,
            instrument_id: c.instrument_id,
            command: c.command,
            parameters: c.parameters,
            expires_at: c.expires_at,
        })
        .collect())
}
