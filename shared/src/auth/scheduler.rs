//! The scheduler's credential: a scheduled job's tick route (`POST
//! /api/v1/jobs/<job>`, for Spin and any host without cron triggers of its
//! own) takes `Authorization: Bearer <SCHEDULER_KEY>`, compared in constant
//! time. On Workers the cron trigger runs the job without a request.

use subtle::ConstantTimeEq as _;

use crate::ctx::Ctx;
use crate::error::ApiError;
use crate::platform::Platform;
use crate::request::Rq;

/// Refuses (401) a tick that does not carry the scheduler's key.
pub fn authorize<P: Platform>(ctx: &Ctx<P>, rq: &Rq) -> Result<(), ApiError> {
    let key = ctx.config.scheduler_key()?;
    let given = crate::request::bearer_token(rq.req.headers()).unwrap_or_default();
    if bool::from(given.as_bytes().ct_eq(key.expose().as_bytes())) {
        Ok(())
    } else {
        Err(ApiError::TokenInvalid("not the scheduler's key"))
    }
}
