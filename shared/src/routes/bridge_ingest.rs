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

async fn ingest<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    let bridge = live::persist::bridge_of(ctx, &principal).await?;
    let batch: Batch = rq.json(ctx)?;
    let ack = live::persist::ingest(ctx, rq, &principal, bridge, &batch).await?;
    Reply::ok(ack)
}
