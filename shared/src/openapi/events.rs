//! Webhooks, their delivery job and the watch: `webhooks*`, `webhook_*`,
//! `job_deliver_webhooks`, `job_watch`.

#[allow(unused_imports)]
use crate::routes;

use crate::audit::events::{
    BridgeData, CalibrationData, CommandData, InstrumentStatusData, MaintenanceData, QcData,
    RunData, SecurityAlertData,
};

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
        routes::job_watch::tick,
    ),
    // The `data` of each event type a webhook is sent (`docs/EVENTS.md`).
    components(schemas(
        InstrumentStatusData,
        RunData,
        QcData,
        CommandData,
        BridgeData,
        MaintenanceData,
        CalibrationData,
        SecurityAlertData
    )),
)]
pub(super) struct Paths;
