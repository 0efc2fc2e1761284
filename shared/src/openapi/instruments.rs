//! Instruments, their status, readings, commands and maintenance; bridges and the live socket: `instruments*`, `instrument_*`, `maintenance_item`, `bridges`, `bridge_*`, `live`.

use crate::routes;

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        routes::instruments::list,
        routes::instruments::create,
        routes::instruments_item::show,
        routes::instruments_item::update,
        routes::instruments_item::remove,
        routes::instrument_status::show,
        routes::instrument_control::control,
        routes::instrument_commands::list,
        routes::instrument_readings::series,
        routes::instrument_maintenance::list,
        routes::instrument_maintenance::schedule,
        routes::maintenance_item::update,
        routes::bridges::list,
        routes::bridge_join_tokens::list,
        routes::bridge_join_tokens::create,
        routes::bridge_join_tokens_item::revoke,
        routes::bridge_enroll::enroll,
        routes::bridge_ingest::ingest,
        routes::bridge_commands::poll,
        routes::live::live,
        routes::instrument_types::list,
    ),
    components(schemas(crate::live::hub::DashboardEvent))
)]
pub(super) struct Paths;
