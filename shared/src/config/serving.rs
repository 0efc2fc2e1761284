//! How the deployment meets browsers and the proxies in front of it.
//!
//! - `CORS_ORIGIN`: the origins (`https://eln.lab.example`, comma-separated)
//!   whose pages may call the API with credentials. Unset: none; the web
//!   application is served on the API's own origin and needs no CORS. A
//!   wildcard is refused: an answer allowed to every origin cannot carry
//!   credentials, and every route but a few takes them.
//! - `APP_URL` (shared with mail): when it is `https://`, the deployment is
//!   served over TLS and every answer carries `Strict-Transport-Security`
//!   (so does an answer to a request whose URI is `https`).
//! - `CLIENT_ADDRESS_HEADER`: the request header the platform or the
//!   deployment's own proxy sets to the client's address (Spin sets
//!   `spin-client-addr`). Unset: a host trusts no header; the address is the
//!   platform's (Workers `cf-connecting-ip`, the native host's peer) or
//!   unknown (plain `wasmtime serve`), and an unknown address shares one
//!   rate-limit bucket and fails every API key's CIDR allowlist.

use http::HeaderName;

use super::{ConfigError, Vars};

/// See the module docs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpConfig {
    /// Allowed origins, as browsers send them (`scheme://host[:port]`,
    /// lowercase).
    pub cors_origins: Vec<String>,
    /// Whether answers carry `Strict-Transport-Security`.
    pub hsts: bool,
    pub client_address_header: Option<HeaderName>,
}

impl HttpConfig {
    pub(super) fn parse(vars: &Vars) -> Result<HttpConfig, ConfigError> {
        let cors_origins = match vars.get("CORS_ORIGIN") {
            None => Vec::new(),
            Some(raw) => raw
                .split(',')
                .map(str::trim)
                .filter(|entry| !entry.is_empty())
                .map(origin)
                .collect::<Result<_, _>>()?,
        };
        let hsts = vars
            .get("APP_URL")
            .is_some_and(|url| url.trim().to_ascii_lowercase().starts_with("https://"));
        let client_address_header = match vars
            .get("CLIENT_ADDRESS_HEADER")
            .map(|v| v.trim().to_ascii_lowercase())
            .filter(|v| !v.is_empty())
        {
            None => None,
            Some(name) => Some(HeaderName::try_from(name.as_str()).map_err(|_| {
                ConfigError(format!(
                    "CLIENT_ADDRESS_HEADER {name:?} is not a header name"
                ))
            })?),
        };
        Ok(HttpConfig {
            cors_origins,
            hsts,
            client_address_header,
        })
    }

    /// Whether a page of `origin` (an `Origin` header's value) may call.
    pub fn allows(&self, origin: &str) -> bool {
        self.cors_origins.iter().any(|allowed| allowed == origin)
    }
}

/// One `CORS_ORIGIN` entry as browsers spell an origin: scheme and host in
/// lowercase, the port only when it is not the scheme's default.
fn origin(entry: &str) -> Result<String, ConfigError> {
    let problem = || {
        ConfigError(format!(
            "CORS_ORIGIN entry {entry:?} must be an origin such as https://eln.lab.example (no wildcard, path or user)"
        ))
    };
    let uri: http::Uri = entry.parse().map_err(|_| problem())?;
    let scheme = uri.scheme_str().ok_or_else(problem)?.to_ascii_lowercase();
    let authority = uri.authority().ok_or_else(problem)?;
    let path_ok = matches!(
        uri.path_and_query().map(|p| p.as_str()),
        None | Some("/") | Some("")
    );
    if !matches!(scheme.as_str(), "http" | "https")
        || !path_ok
        || authority.as_str().contains('@')
        || authority.host().contains('*')
    {
        return Err(problem());
    }
    let default_port = if scheme == "https" { 443 } else { 80 };
    let host = authority.host().to_ascii_lowercase();
    Ok(match authority.port_u16() {
        Some(port) if port != default_port => format!("{scheme}://{host}:{port}"),
        _ => format!("{scheme}://{host}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&'static str, &str)]) -> Result<HttpConfig, ConfigError> {
        let vars = Vars(pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect());
        HttpConfig::parse(&vars)
    }

    #[test]
    fn origins_are_spelled_as_browsers_send_them() {
        let config = parse(&[(
            "CORS_ORIGIN",
            "https://ELN.lab.example/, http://localhost:5173, https://lims.example:443",
        )])
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            config.cors_origins,
            [
                "https://eln.lab.example",
                "http://localhost:5173",
                "https://lims.example"
            ]
        );
        assert!(config.allows("http://localhost:5173"));
        assert!(!config.allows("http://localhost:5174"));
        assert!(!config.allows("null"));
    }

    #[test]
    fn wildcards_paths_and_users_are_refused() {
        for bad in [
            "*",
            "https://*.lab.example",
            "https://lab.example/app",
            "ftp://lab.example",
            "https://a@lab.example",
            "lab.example",
        ] {
            assert!(parse(&[("CORS_ORIGIN", bad)]).is_err(), "{bad}");
        }
        assert_eq!(parse(&[]).map(|c| c.cors_origins.len()).ok(), Some(0));
    }

    #[test]
    fn hsts_follows_the_public_url_and_the_address_header_is_opt_in() {
        let plain = parse(&[("APP_URL", "http://127.0.0.1:8787")]).unwrap_or_default();
        assert!(!plain.hsts && plain.client_address_header.is_none());
        let tls = parse(&[
            ("APP_URL", "https://lab.example"),
            ("CLIENT_ADDRESS_HEADER", "Spin-Client-Addr"),
        ])
        .unwrap_or_default();
        assert!(tls.hsts);
        assert_eq!(
            tls.client_address_header.as_ref().map(HeaderName::as_str),
            Some("spin-client-addr")
        );
        assert!(parse(&[("CLIENT_ADDRESS_HEADER", "bad header")]).is_err());
    }
}
