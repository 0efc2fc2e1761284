//! A socket's text messages: a bridge's batches (stored through
//! `persist::ingest`, their readings broadcast to the organization's
//! dashboards) and a dashboard's subscriptions.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::json;

use super::{
    Broadcast, DashboardEvent, FollowedInstrument, LiveReading, MAX_SUBSCRIPTIONS, Peer, Reaction,
    Role, request,
};
use crate::ctx::Ctx;
use crate::error::ApiError;
use crate::live::persist;
use crate::live::{Batch, BatchAck, Item};
use crate::model::instrument;
use crate::platform::Platform;
use crate::request::Rq;

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
enum BridgeMessage {
    Batch { batch: Batch },
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
enum DashboardMessage {
    #[serde(rename_all = "camelCase")]
    Subscribe {
        #[serde(default)]
        instrument_ids: Vec<uuid::Uuid>,
        #[serde(default)]
        all: bool,
    },
    #[serde(rename_all = "camelCase")]
    Unsubscribe {
        #[serde(default)]
        instrument_ids: Vec<uuid::Uuid>,
        #[serde(default)]
        all: bool,
    },
}

/// Handles one text message from `peer`'s socket.
pub async fn on_text<P: Platform>(ctx: &Ctx<P>, peer: &mut Peer, text: &str) -> Reaction {
    let mut rq = match request(ctx, peer) {
        Ok(rq) => rq,
        Err(reaction) => return reaction,
    };
    if peer.role == Role::Dashboard && !peer.count_message(ctx.now().unix_timestamp()) {
        let refused = ApiError::RateLimited {
            retry_after_secs: 60,
            started_block: false,
            caller: Some(peer.principal.caller()),
        };
        crate::audit::record_refusal(ctx, &rq, &refused).await;
        return Reaction {
            close: Some((super::CLOSE_POLICY, "too many messages")),
            ..Reaction::failure(&rq, &refused)
        };
    }
    let result = match peer.role {
        Role::Bridge => match serde_json::from_str::<BridgeMessage>(text) {
            Ok(BridgeMessage::Batch { batch }) => on_batch(ctx, &mut rq, peer, batch).await,
            Err(e) => Err(ApiError::invalid("message", e.to_string())),
        },
        Role::Dashboard => match serde_json::from_str::<DashboardMessage>(text) {
            Ok(message) => on_dashboard(ctx, &mut rq, peer, message).await,
            Err(e) => Err(ApiError::invalid("message", e.to_string())),
        },
    };
    match result {
        Ok(reaction) => reaction,
        Err(err) => {
            crate::audit::record_refusal(ctx, &rq, &err).await;
            Reaction::failure(&rq, &err)
        }
    }
}

async fn on_batch<P: Platform>(
    ctx: &Ctx<P>,
    rq: &mut Rq,
    peer: &mut Peer,
    batch: Batch,
) -> Result<Reaction, ApiError> {
    // Every batch is checked (and rate-limited) as an HTTP ingest would be.
    let principal = peer.principal(ctx, rq, true).await?;
    let bridge = persist::bridge_of(ctx, &principal).await?;
    if Some(bridge.id) != peer.bridge_id {
        return Err(ApiError::Forbidden {
            caller: Some(principal.caller()),
        });
    }
    let ack = persist::ingest(ctx, rq, &principal, bridge, &batch).await?;
    let mut reaction = Reaction::reply(json!({ "type": "ack", "ack": ack }).to_string());
    reaction.broadcasts = readings_of(bridge.organization_id, &batch, &ack);
    reaction.reported = batch
        .heartbeat
        .instruments
        .iter()
        .map(|i| (i.id, i.status.as_str().to_owned()))
        .collect();
    Ok(reaction)
}

/// The readings `ack` says were stored now, one message per instrument.
pub(super) fn readings_of(
    organization_id: uuid::Uuid,
    batch: &Batch,
    ack: &BatchAck,
) -> Vec<Broadcast> {
    let rejected: Vec<u64> = ack.rejected.iter().map(|r| r.seq).collect();
    let mut by_instrument: BTreeMap<uuid::Uuid, Vec<LiveReading>> = BTreeMap::new();
    // The batch's records are consecutive: the first `duplicates` were
    // stored before.
    for record in batch.records.iter().skip(ack.duplicates as usize) {
        let Item::Reading(reading) = &record.item else {
            continue;
        };
        if rejected.contains(&record.seq) {
            continue;
        }
        by_instrument
            .entry(reading.instrument_id)
            .or_default()
            .push(LiveReading {
                metric: reading.metric.clone(),
                value: reading.value,
                unit: reading.unit.clone(),
                recorded_at: reading.recorded_at,
            });
    }
    by_instrument
        .into_iter()
        .map(|(instrument_id, readings)| Broadcast {
            organization_id,
            instrument_id,
            text: DashboardEvent::Readings {
                instrument_id,
                readings,
            }
            .text(),
        })
        .collect()
}

async fn on_dashboard<P: Platform>(
    ctx: &Ctx<P>,
    rq: &mut Rq,
    peer: &mut Peer,
    message: DashboardMessage,
) -> Result<Reaction, ApiError> {
    let scope = peer.principal(ctx, rq, false).await?.scope();
    let (subscribe, ids, all) = match message {
        DashboardMessage::Subscribe {
            instrument_ids,
            all,
        } => (true, instrument_ids, all),
        DashboardMessage::Unsubscribe {
            instrument_ids,
            all,
        } => (false, instrument_ids, all),
    };
    if !subscribe {
        if all {
            peer.all = false;
            peer.instruments.clear();
        } else {
            peer.instruments.retain(|i| !ids.contains(i));
        }
    } else if all {
        peer.all = true;
    } else {
        let mut wanted = peer.instruments.clone();
        for id in &ids {
            if !wanted.contains(id) {
                wanted.push(*id);
            }
        }
        if wanted.len() > MAX_SUBSCRIPTIONS {
            return Err(ApiError::invalid(
                "instrumentIds",
                format!(
                    "At most {MAX_SUBSCRIPTIONS} instruments by name on one socket; subscribe with \"all\": true for every instrument"
                ),
            ));
        }
        let found = instrument::summaries(&ctx.db(), &scope, Some(&ids)).await?;
        let missing: Vec<String> = ids
            .iter()
            .filter(|id| !found.iter().any(|f| f.id == **id))
            .map(|id| id.to_string())
            .collect();
        if !missing.is_empty() {
            // Another organization's instrument is as unknown as none.
            return Err(ApiError::Validation(
                missing
                    .into_iter()
                    .map(|id| {
                        crate::error::FieldError::new(
                            "instrumentIds",
                            format!("No instrument {id}"),
                        )
                    })
                    .collect(),
            ));
        }
        peer.instruments = wanted;
    }
    // The current state of what the socket follows, to draw before the
    // first reading arrives.
    let followed = (!peer.all).then_some(peer.instruments.as_slice());
    let current = instrument::summaries(&ctx.db(), &scope, followed).await?;
    let instruments = current
        .into_iter()
        .map(|f| FollowedInstrument {
            id: f.id,
            name: f.name,
            status: f.status,
            last_seen_at: f.last_seen_at,
        })
        .collect();
    Ok(Reaction::reply(
        DashboardEvent::Subscribed {
            all: peer.all,
            instruments,
        }
        .text(),
    ))
}
