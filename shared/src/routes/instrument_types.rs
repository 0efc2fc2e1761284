//! `GET /api/v1/instrument-types` (`instruments:view`): every instrument
//! type with what a client needs to offer it: its name, its configuration
//! as a JSON Schema (the fields `POST /api/v1/instruments` accepts in
//! `configuration`, from `domain::schema`), its QC metrics with their
//! default thresholds, and the control commands it takes. The web app
//! builds its add-instrument form from it.

use serde::Serialize;
use serde_json::Value;

use crate::auth::{self, Permission};
use crate::ctx::Ctx;
use crate::domain::qc::{Better, qc_metrics};
use crate::domain::{InstrumentStatus, InstrumentType, command, schema};
use crate::envelope::Reply;
use crate::error::ApiError;
use crate::model::page::Items;
use crate::platform::Platform;
use crate::request::Rq;

super::methods! {
    GET => list,
}

/// One instrument type.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
struct TypeInfo {
    #[serde(rename = "type")]
    kind: InstrumentType,
    label: &'static str,
    /// A JSON Schema (2020-12) of the type's `configuration`: an object of
    /// optional fields, no others, each with a `title` (its label, with its
    /// unit), in the order of `x-order`. A field that bounds a metric the
    /// instrument reports carries `x-limit: {metric, kind}` (`kind`
    /// `setpoint`, `high` or `low`): a chart of that metric draws it.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    configuration: Value,
    /// The QC metrics its run data are checked on, with the default
    /// thresholds (`configuration.qcThresholds` overrides them).
    qc_metrics: Vec<MetricInfo>,
    /// The control commands it accepts (`POST .../control`).
    commands: Vec<CommandInfo>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
struct MetricInfo {
    name: &'static str,
    description: &'static str,
    better: Better,
    warn: f64,
    fail: f64,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
struct CommandInfo {
    name: &'static str,
    description: &'static str,
    /// A JSON Schema of its `parameters`.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    parameters: Value,
    required: &'static [&'static str],
    /// The statuses in which the instrument takes it.
    allowed_in: &'static [InstrumentStatus],
}

/// The instrument types and their schemas
///
/// Requires `instruments:view`. The same for every organization; the
/// source of the forms that register and configure instruments.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/api/v1/instrument-types",
    responses((status = 200, description = "Every type", body = Items<TypeInfo>))))]
async fn list<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::InstrumentsView)?;
    let items: Vec<TypeInfo> = InstrumentType::ALL
        .iter()
        .map(|&kind| TypeInfo {
            kind,
            label: kind.label(),
            configuration: schema::configuration_schema(kind),
            qc_metrics: qc_metrics(kind)
                .iter()
                .map(|m| MetricInfo {
                    name: m.name,
                    description: m.description,
                    better: m.better,
                    warn: m.warn,
                    fail: m.fail,
                })
                .collect(),
            commands: command::STANDARD
                .iter()
                .chain(command::specific(kind))
                .map(|spec| {
                    let mut parameters = schema::json_schema(spec.parameters);
                    parameters["required"] = Value::from(spec.required.to_vec());
                    CommandInfo {
                        name: spec.name,
                        description: spec.description,
                        parameters,
                        required: spec.required,
                        allowed_in: spec.allowed_in,
                    }
                })
                .collect(),
        })
        .collect();
    Reply::ok(Items { items })
}
