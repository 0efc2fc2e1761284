//! `POST /api/v1/bridges/ingest` (a bridge's key): the HTTP transport of
//! the live path, for hosts without WebSockets (Spin) and bridges run with
//! `--transport http`. The body is a [`Batch`](crate::live::Batch) (records
//! of one stream in order, and the heartbeat); the answer is the
//! [`BatchAck`](crate::live::BatchAck): the cumulative acknowledged
//! sequence, how many records were stored now or already, and those that
//! can never be stored (an instrument not in the organization) with why.
//! Sending a batch again stores nothing twice; a batch that would leave a
//! gap is 409 with the sequence expected. Storing is
//! [`live::persist::ingest`](crate::live::persist::ingest), shared with the
//! hub.

use crate::auth;
use crate::ctx::Ctx;
use crate::envelope::Reply;
use crate::error::ApiError;
use crate::live::{self, Batch};
use crate::platform::Platform;
use crate::request::Rq;

super::methods! {
    POST => ingest,
}

/// Send a bridge's records and heartbeat
///
/// A bridge's key only (403 for any other caller). The HTTP transport of
/// the live path (the WebSocket `GET /api/v1/live` carries the same
/// batches): records of one stream in order (readings and command
/// outcomes), with the bridge's heartbeat, stored in one transaction.
/// Records up to the stream's acknowledged sequence are skipped, so sending
/// a batch again stores nothing twice; a batch that would leave a gap is
/// 409 with the sequence expected in `details` (`records[0].seq`). A record
/// that can never be stored (an instrument not in the organization or
/// served by another bridge, a command not handed to this bridge) is
/// acknowledged with the others and listed in `rejected`. The first bridge
/// to report an instrument no bridge serves serves it from then on
/// (audited, `INSTRUMENT_BOUND_TO_BRIDGE`); a reported status change is
/// audited (`INSTRUMENT_STATUS_CHANGED`; an instrument in maintenance stays
/// there), and so is each command outcome.
#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/api/v1/bridges/ingest",
    security(("bridgeToken" = [])),
    request_body = Batch,
    responses(
        (status = 200, description = "The cumulative acknowledgement", body = crate::live::BatchAck),
        (status = 409, description = "The batch would leave a gap in the stream"))))]
async fn ingest<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    let bridge = live::persist::bridge_of(ctx, &principal).await?;
    let batch: Batch = rq.json(ctx)?;
    let ack = live::persist::ingest(ctx, rq, &principal, bridge, &batch).await?;
    Reply::ok(ack)
}
