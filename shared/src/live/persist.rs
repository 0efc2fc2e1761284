//! Storing what bridges send and handing them their commands: the one
//! implementation behind `POST /api/v1/bridges/ingest`, the command poll and
//! the hub.

use serde::Deserialize;
use serde_json::{Value, json};

use super::{Batch, BatchAck, CommandOrder, CommandState, Item, REDELIVER_AFTER_SECS, Rejected};
use crate::audit;
use crate::auth::{Permission, Principal};
use crate::ctx::Ctx;
use crate::db::{BatchOptions, Statement, statement};
use crate::error::{ApiError, FieldError};
use crate::params;
use crate::platform::Platform;
use crate::request::Rq;

/// The bridge a request comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Bridge {
    pub id: uuid::Uuid,
    pub organization_id: uuid::Uuid,
}

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
    ctx.db()
        .fetch_optional(
            "SELECT id, organization_id FROM bridges WHERE api_key_id = $1 AND organization_id = $2",
            params![key, principal.organization_id],
        )
        .await?
        .ok_or_else(forbidden)
}

#[derive(Deserialize)]
struct Known {
    id: uuid::Uuid,
    status: String,
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
    let org = bridge.organization_id;
    let (first, last) = batch.span().unwrap_or((1, 0));
    // Every statement after the first acts only when the batch continues the
    // stream: nothing is skipped, nothing stored twice.
    let continues = "s.acked_sequence >= $3 - 1";

    // The stream's row, locked for the transaction (a stream the cloud has
    // not seen starts where its first batch starts); a heartbeat alone only
    // reads it.
    let mut statements = vec![if last >= first {
        statement(
            "INSERT INTO bridge_streams AS s (bridge_id, stream_id, organization_id, acked_sequence) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (bridge_id, stream_id) DO UPDATE SET updated_at = now() \
             RETURNING s.acked_sequence",
            params![bridge.id, batch.stream, org, int(first - 1)],
        )
    } else {
        statement(
            "SELECT acked_sequence FROM bridge_streams WHERE bridge_id = $1 AND stream_id = $2",
            params![bridge.id, batch.stream],
        )
    }];

    let readings: Vec<Value> = batch
        .records
        .iter()
        .filter_map(|r| match &r.item {
            Item::Reading(reading) => Some(json!({
                "seq": r.seq,
                "instrument_id": reading.instrument_id,
                "metric": reading.metric,
                "value": reading.value,
                "unit": reading.unit,
                "recorded_at": reading
                    .recorded_at
                    .format(&time::format_description::well_known::Rfc3339)
                    .ok(),
            })),
            Item::CommandOutcome(_) => None,
        })
        .collect();
    let readings_at = (!readings.is_empty()).then_some(statements.len());
    if !readings.is_empty() {
        statements.push(statement(
            format!(
                "INSERT INTO readings (organization_id, instrument_id, metric, value, unit, recorded_at, \
                                       bridge_id, stream_id, sequence) \
                 SELECT $4, r.instrument_id, r.metric, r.value, r.unit, r.recorded_at, $1, $2, r.seq \
                   FROM jsonb_to_recordset($5::jsonb) AS r(seq bigint, instrument_id uuid, metric text, \
                                                         value float8, unit text, recorded_at timestamptz) \
                   JOIN instruments i ON i.organization_id = $4 AND i.id = r.instrument_id AND i.deleted_at IS NULL \
                   JOIN bridge_streams s ON s.bridge_id = $1 AND s.stream_id = $2 \
                  WHERE r.seq > s.acked_sequence AND {continues} \
                 RETURNING sequence"
            ),
            params![bridge.id, batch.stream, int(first), org, Value::Array(readings)],
        ));
    }

    let mut outcomes = Vec::new();
    for record in &batch.records {
        let Item::CommandOutcome(outcome) = &record.item else {
            continue;
        };
        let (event_type, action, severity) = match outcome.state {
            CommandState::Acknowledged => (
                "INSTRUMENT_COMMAND_ACKNOWLEDGED",
                "Command acknowledged by the instrument",
                "INFO",
            ),
            CommandState::Completed => (
                "INSTRUMENT_COMMAND_COMPLETED",
                "Command completed on the instrument",
                "INFO",
            ),
            CommandState::Failed => (
                "INSTRUMENT_COMMAND_FAILED",
                "Command failed on the instrument",
                "WARNING",
            ),
        };
        let event = audit::Event {
            severity,
            new_values: Some(json!({
                "status": outcome.state.as_str(),
                "result": outcome.result,
                "error": outcome.error,
            })),
            metadata: json!({ "bridgeId": bridge.id, "stream": batch.stream, "sequence": record.seq }),
            ..audit::Event::by(
                ctx.new_uuid(),
                principal,
                event_type,
                action,
                ("instrument_command", outcome.command_id),
            )
        };
        // Forward only: sent -> acknowledged -> completed | failed (a fast
        // command may skip acknowledged).
        let change = statement(
            format!(
                "UPDATE instrument_commands c SET status = $5, updated_at = now(), \
                   acknowledged_at = coalesce(c.acknowledged_at, $6::timestamptz), \
                   completed_at = CASE WHEN $5 IN ('completed', 'failed') THEN $6::timestamptz END, \
                   result = coalesce($7::jsonb, c.result), error = $8 \
                 FROM bridge_streams s \
                 WHERE s.bridge_id = $1 AND s.stream_id = $2 AND s.acked_sequence < $9 AND {continues} \
                   AND c.organization_id = $4 AND c.id = $10 AND c.bridge_id = $1 \
                   AND (c.status = 'sent' OR (c.status = 'acknowledged' AND $5 <> 'acknowledged')) \
                 RETURNING c.id"
            ),
            params![
                bridge.id,
                batch.stream,
                int(first),
                org,
                outcome.state.as_str(),
                outcome.at,
                outcome.result,
                outcome.error,
                int(record.seq),
                outcome.command_id,
            ],
        );
        outcomes.push((record.seq, statements.len()));
        statements.push(event.record_change(rq, change));
    }

    if last >= first {
        statements.push(statement(
            format!(
                "UPDATE bridge_streams s SET acked_sequence = $4, updated_at = now() \
                 WHERE s.bridge_id = $1 AND s.stream_id = $2 AND s.acked_sequence < $4 AND {continues}"
            ),
            params![bridge.id, batch.stream, int(first), int(last)],
        ));
    }
    statements.extend(heartbeat(ctx, rq, principal, bridge, batch).await?);

    let results = ctx.db().batch(statements, BatchOptions::default()).await?;
    let acked: Vec<Acked> = results[0].decode().map_err(ApiError::internal)?;
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
        Some(at) => results[at].decode().map_err(ApiError::internal)?,
        None => Vec::new(),
    };
    let stored: std::collections::HashSet<u64> = stored_readings
        .iter()
        .map(|s| s.sequence as u64)
        .chain(
            outcomes
                .iter()
                .filter(|(_, at)| results[*at].row_count.unwrap_or(0) > 0)
                .map(|(seq, _)| *seq),
        )
        .collect();
    let mut rejected = Vec::new();
    let mut duplicates = 0;
    for record in &batch.records {
        if record.seq <= before {
            duplicates += 1;
        } else if !stored.contains(&record.seq) {
            rejected.push(Rejected {
                seq: record.seq,
                reason: match record.item {
                    Item::Reading(_) => "no such instrument in this organization".into(),
                    Item::CommandOutcome(_) => {
                        "no such command handed to this bridge, or it has already finished".into()
                    }
                },
            });
        }
    }
    Ok(BatchAck {
        stream: batch.stream,
        acked: before.max(last),
        stored: stored.len() as u64,
        duplicates,
        rejected,
    })
}

/// The heartbeat's statements: the bridge's row, the instruments it reaches
/// (`last_seen_at`), and each instrument whose status it reports changed
/// (audited as `INSTRUMENT_STATUS_CHANGED`; an instrument in maintenance
/// stays there).
async fn heartbeat<P: Platform>(
    ctx: &Ctx<P>,
    rq: &mut Rq,
    principal: &Principal,
    bridge: Bridge,
    batch: &Batch,
) -> Result<Vec<Statement>, ApiError> {
    let org = bridge.organization_id;
    let hb = &batch.heartbeat;
    let reported: Vec<String> = hb.instruments.iter().map(|i| i.id.to_string()).collect();
    let mut statements = vec![statement(
        "UPDATE bridges SET version = coalesce($3, version), hostname = coalesce($4, hostname), \
           last_heartbeat_at = now(), queue_depth = $5, \
           connected_instruments = (SELECT coalesce(jsonb_agg(i.id ORDER BY i.id), '[]'::jsonb) FROM instruments i \
              WHERE i.organization_id = $2 AND i.deleted_at IS NULL \
                AND i.id IN (SELECT value::uuid FROM jsonb_array_elements_text($6::jsonb))) \
         WHERE id = $1 AND organization_id = $2",
        params![
            bridge.id,
            org,
            hb.version,
            hb.hostname,
            int(hb.queue_depth),
            json!(reported)
        ],
    )];
    let mut seen: Vec<String> = hb
        .instruments
        .iter()
        .filter(|i| i.status != "offline")
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
        statements.push(statement(
            "UPDATE instruments SET last_seen_at = now() WHERE organization_id = $1 AND deleted_at IS NULL \
               AND id IN (SELECT value::uuid FROM jsonb_array_elements_text($2::jsonb))",
            params![org, json!(seen)],
        ));
    }
    if hb.instruments.is_empty() {
        return Ok(statements);
    }
    let known: Vec<Known> = ctx
        .db()
        .fetch_all(
            "SELECT id, status FROM instruments WHERE organization_id = $1 AND deleted_at IS NULL \
               AND id IN (SELECT value::uuid FROM jsonb_array_elements_text($2::jsonb))",
            params![org, json!(reported)],
        )
        .await?;
    for state in &hb.instruments {
        let Some(current) = known.iter().find(|k| k.id == state.id) else {
            continue;
        };
        if current.status == state.status || current.status == "maintenance" {
            continue;
        }
        let event = audit::Event {
            old_values: Some(json!({ "status": current.status })),
            new_values: Some(json!({ "status": state.status })),
            metadata: json!({ "source": "bridge", "bridgeId": bridge.id }),
            ..audit::Event::by(
                ctx.new_uuid(),
                principal,
                "INSTRUMENT_STATUS_CHANGED",
                "Instrument status reported by its bridge",
                ("instrument", state.id),
            )
        };
        statements.push(event.record_change(
            rq,
            statement(
                "UPDATE instruments SET status = $3, updated_at = now() \
                 WHERE organization_id = $1 AND id = $2 AND status = $4 AND deleted_at IS NULL RETURNING id",
                params![org, state.id, state.status, current.status],
            ),
        ));
    }
    Ok(statements)
}

#[derive(Deserialize)]
struct Candidate {
    id: uuid::Uuid,
    instrument_id: uuid::Uuid,
    command: String,
    parameters: Value,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: time::OffsetDateTime,
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
    let candidates: Vec<Candidate> = ctx
        .db()
        .fetch_all(
            "SELECT c.id, c.instrument_id, c.command, c.parameters, c.expires_at \
               FROM instrument_commands c JOIN bridges b ON b.id = $2 AND b.organization_id = c.organization_id \
              WHERE c.organization_id = $1 AND c.expires_at > now() \
                AND c.instrument_id IN (SELECT value::uuid FROM jsonb_array_elements_text(b.connected_instruments)) \
                AND (c.status = 'queued' \
                     OR (c.status = 'sent' AND c.bridge_id = $2 AND c.sent_at < now() - make_interval(secs => $3))) \
              ORDER BY c.created_at, c.id LIMIT $4",
            params![bridge.organization_id, bridge.id, REDELIVER_AFTER_SECS, limit],
        )
        .await?;
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let statements: Vec<Statement> = candidates
        .iter()
        .map(|c| {
            let event = audit::Event {
                new_values: Some(json!({ "status": "sent", "bridgeId": bridge.id })),
                metadata: json!({ "instrumentId": c.instrument_id }),
                ..audit::Event::by(
                    ctx.new_uuid(),
                    principal,
                    "INSTRUMENT_COMMAND_SENT",
                    "Command handed to the instrument's bridge",
                    ("instrument_command", c.id),
                )
            };
            event.record_change(
                rq,
                statement(
                    "UPDATE instrument_commands SET status = 'sent', bridge_id = $3, sent_at = now(), updated_at = now() \
                     WHERE organization_id = $1 AND id = $2 AND expires_at > now() \
                       AND (status = 'queued' OR (status = 'sent' AND bridge_id = $3 \
                            AND sent_at < now() - make_interval(secs => $4))) RETURNING id",
                    params![bridge.organization_id, c.id, bridge.id, REDELIVER_AFTER_SECS],
                ),
            )
        })
        .collect();
    let results = ctx.db().batch(statements, BatchOptions::default()).await?;
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
