//! `GET /api/openapi.json`: the API's OpenAPI 3.1 document. It is generated
//! from the code (`shared::openapi`, native builds only) into
//! `docs/openapi.json` by `cargo xtask routes`; this function serves that
//! file as it is, so no function carries the generator. Public: the web
//! application's client and the API playground read it.

use http::{HeaderValue, StatusCode, header};

use crate::ctx::Ctx;
use crate::envelope::Reply;
use crate::error::ApiError;
use crate::platform::Platform;
use crate::request::Rq;

/// The generated document, checked against the code by the tests.
pub const DOCUMENT: &str = include_str!("../../../docs/openapi.json");

super::methods! {
    GET => document,
}

/// The OpenAPI 3.1 document of this API
///
/// Public. The document itself, not in the envelope.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/api/openapi.json", security(()),
    responses((status = 200, description = "The document", content_type = "application/json", body = Object))))]
async fn document<P: Platform>(_ctx: &Ctx<P>, _rq: &mut Rq) -> Result<Reply, ApiError> {
    Ok(Reply::raw(
        StatusCode::OK,
        bytes::Bytes::from_static(DOCUMENT.as_bytes()),
    )
    .header(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    ))
}
