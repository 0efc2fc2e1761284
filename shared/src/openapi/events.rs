//! Webhooks and their delivery job: `webhooks*`, `webhook_*`, `job_deliver_webhooks`.

#[allow(unused_imports)]
use crate::routes;

use crate::audit::events::{CommandData, InstrumentStatusData, RunData, SecurityAlertData};

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        routes::webhooks::list,
        routes::webhooks::create,
        routes::webhooks_item::show,
        routes::webhooks_item::update,
        routes::webhooks_item::remove,
        routes::webhook_deliveries::list,
        routes::webhook_delivery_retry::retry,
        routes::webhook_recover::recover,
        routes::webhook_secret::rotate,
        routes::webhook_test::test,
        routes::job_deliver_webhooks::tick,
    ),
    // The `data` of each event type a webhook is sent (`docs/EVENTS.md`).
    components(schemas(InstrumentStatusData, RunData, CommandData, SecurityAlertData)),
)]
pub(super) struct Paths;
