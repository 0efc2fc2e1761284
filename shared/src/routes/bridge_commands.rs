//! `GET /api/v1/bridges/commands?wait=&limit=` (a bridge's key): the
//! commands waiting for the instruments the bridge reported in its last
//! heartbeat, oldest first, each marked `sent` to this bridge (audited).
//! With `wait` (seconds, at most 25) the request is a long poll: it answers
//! as soon as a command is waiting, or empty when the time is up. The
//! bridge reports acknowledgements and results as records of its stream
//! (`POST /api/v1/bridges/ingest`). A command sent but not acknowledged
//! within 30 seconds is handed out again.

use std::time::Duration;

use serde::Deserialize;

use crate::auth;
use crate::ctx::Ctx;
use crate::envelope::Reply;
use crate::error::ApiError;
use crate::live::{self, MAX_POLL_WAIT_SECS};
use crate::model::page::Items;
use crate::platform::Platform;
use crate::request::Rq;

super::methods! {
    GET => poll,
}

/// How often a long poll looks again.
const POLL_EVERY: Duration = Duration::from_millis(500);

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
struct Query {
    /// Seconds to wait for a command, 0 to 25 (default 0: answer at once).
    #[cfg_attr(feature = "openapi", param(minimum = 0, maximum = 25))]
    wait: Option<u64>,
    /// At most this many commands, 1 to 100 (default 50).
    #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 100))]
    limit: Option<i64>,
}

/// Take a bridge's waiting commands
///
/// A bridge's key only (403 for any other caller). The unexpired commands
/// waiting for the instruments it reported in its last heartbeat and
/// serves, oldest first, each marked `sent` to it (audited,
/// `INSTRUMENT_COMMAND_SENT`). With `wait` it is a long poll: it answers as
/// soon as a command is waiting, or empty when the time is up. A command
/// sent but not acknowledged within 30 seconds is handed out again (with
/// the same `id`). The bridge reports acknowledgements and results as
/// records of its stream (`POST /api/v1/bridges/ingest`).
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/api/v1/bridges/commands",
    security(("bridgeToken" = [])),
    params(Query),
    responses((status = 200, description = "The commands handed out now (perhaps none)", body = Items<crate::live::CommandOrder>))))]
async fn poll<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    let bridge = live::persist::bridge_of(ctx, &principal).await?;
    let query: Query = rq.query()?;
    let wait = query.wait.unwrap_or(0);
    if wait > MAX_POLL_WAIT_SECS {
        return Err(ApiError::invalid(
            "wait",
            format!("At most {MAX_POLL_WAIT_SECS} seconds"),
        ));
    }
    let limit = query.limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid("limit", "Must be between 1 and 100"));
    }
    let until = ctx.now() + Duration::from_secs(wait);
    loop {
        let commands = live::persist::take_commands(ctx, rq, &principal, bridge, limit).await?;
        if !commands.is_empty() || ctx.now() >= until {
            return Reply::ok(Items { items: commands });
        }
        ctx.platform.sleep(POLL_EVERY).await;
    }
}
