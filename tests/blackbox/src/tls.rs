//! The bridge behind TLS signed by the lab's own certificate authority:
//! a private CA, or the TLS-inspecting proxy of a hospital network. The
//! suite makes a CA, puts a TLS front signed by it before the host under
//! test (as the lab's proxy would be), and checks that enrollment and
//! both transports go through only when the bridge is told to trust it.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, ensure};
use serde_json::json;
use tokio_rustls::rustls;

use crate::client::TestApp;
use crate::lab::{id_of, register};
use crate::live::{
    InProcessAgent, Instrument, eventually, host_address, join_token, metrics, pipe, stored_counter,
};
use crate::stack::{HostKind, free_port};
use uuid::Uuid;

crate::cases![live_agent_trusts_the_labs_own_certificate_authority];

/// A certificate authority and a server certificate for `localhost`
/// signed by it.
struct LabCa {
    ca_pem: String,
    server: rustls::pki_types::CertificateDer<'static>,
    server_key: rustls::pki_types::PrivateKeyDer<'static>,
}

impl LabCa {
    fn new() -> anyhow::Result<LabCa> {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Lab 2 private CA");
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let ca = rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate()?)?;
        let key = rcgen::KeyPair::generate()?;
        let server =
            rcgen::CertificateParams::new(vec!["localhost".to_owned()])?.signed_by(&key, &ca)?;
        Ok(LabCa {
            ca_pem: ca.pem(),
            server: server.der().clone(),
            server_key: rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        })
    }

    /// A TLS front on a free port, forwarding to `to` until dropped.
    async fn front(&self, to: String) -> anyhow::Result<(tokio::task::JoinHandle<()>, u16)> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(vec![self.server.clone()], self.server_key.clone_key())?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let task = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let (acceptor, to) = (acceptor.clone(), to.clone());
                tokio::spawn(async move {
                    // A client that does not trust the certificate hangs
                    // up during the handshake: nothing to forward.
                    if let Ok(inbound) = acceptor.accept(inbound).await {
                        pipe(inbound, to).await;
                    }
                });
            }
        });
        Ok((task, port))
    }
}

fn agent_config(
    dir: &std::path::Path,
    url: &str,
    transport: &str,
    ca_file: Option<&std::path::Path>,
    metrics_port: u16,
    instrument: &Uuid,
    instrument_port: u16,
) -> anyhow::Result<edge_bridge::config::Config> {
    let ca = ca_file.map_or_else(String::new, |path| {
        format!("tls_ca_file = {:?}\n", path.display().to_string())
    });
    let text = format!(
        "dir = {dir:?}\nurl = {url:?}\ntransport = {transport:?}\nheartbeat_secs = 1\nflush_ms = 20\n\
         metrics_listen = \"127.0.0.1:{metrics_port}\"\n{ca}\
         [[instruments]]\ndriver = \"tcp\"\nid = \"{instrument}\"\naddress = \"127.0.0.1:{instrument_port}\"\n",
        dir = dir.display().to_string()
    );
    edge_bridge::config::Config::parse(&text, |_| None).map_err(|e| anyhow::anyhow!("{e}"))
}

async fn live_agent_trusts_the_labs_own_certificate_authority(app: &TestApp) -> anyhow::Result<()> {
    let (_, token) = app.admin().await?;
    let lab_ca = LabCa::new()?;
    let (front, front_port) = lab_ca.front(host_address(app)?).await?;
    let url = format!("https://localhost:{front_port}");
    let files = tempfile::tempdir()?;
    let ca_file = files.path().join("lab-ca.pem");
    std::fs::write(&ca_file, &lab_ca.ca_pem)?;
    let public = edge_bridge::tls::Trust::load(None)?;
    let lab = edge_bridge::tls::Trust::load(Some(&ca_file))?;
    ensure!(lab.own_authorities() == 1);

    // Enrollment: refused with the reason while the CA is not trusted;
    // the join token is not spent by that, and works once it is.
    let join = join_token(app, &token).await?;
    let dir = tempfile::tempdir()?;
    let refused = edge_bridge::enroll::enroll(&url, &join, dir.path(), None, false, &public).await;
    match &refused {
        Err(edge_bridge::enroll::EnrollError::Unreachable(why)) => ensure!(
            why.contains("UnknownIssuer"),
            "the refusal names the untrusted issuer: {why}"
        ),
        other => anyhow::bail!("expected an untrusted certificate, got {other:?}"),
    }
    ensure!(
        !dir.path()
            .join(edge_bridge::enroll::CREDENTIALS_FILE)
            .exists()
    );
    let credentials =
        edge_bridge::enroll::enroll(&url, &join, dir.path(), Some("lab-pc"), false, &lab)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    ensure!(credentials.url == url);

    let freezer =
        id_of(&register(app, &token, json!({"name": "Freezer", "type": "freezer"})).await?)?;
    let (instrument, instrument_port) = Instrument::start(5, Duration::from_millis(20)).await?;
    let db = app.db().await?;

    // Without the lab's CA the agent keeps every reading on disk and
    // says the uplink is down; nothing reaches the cloud.
    let metrics_port = free_port()?;
    let distrustful = InProcessAgent::start(agent_config(
        dir.path(),
        &url,
        "http",
        None,
        metrics_port,
        &freezer,
        instrument_port,
    )?);
    eventually(20, "readings buffered on disk", || async {
        Ok(instrument.acked().len() >= 100)
    })
    .await?;
    let m = metrics(metrics_port).await?;
    ensure!(m["edge_bridge_uplink_up"] == 0.0, "{m:?}");
    ensure!(m["edge_bridge_queue_depth"] >= 100.0, "{m:?}");
    ensure!(stored_counter(&db, &freezer).await?.is_empty());
    distrustful.stop().await?;

    // With it, over each transport this host has (Spin has no hub), the
    // backlog and what follows arrive in order, once.
    let transports: &[&str] = if app.stack.kind == HostKind::Wasmtime {
        &["http"]
    } else {
        &["websocket", "http"]
    };
    for transport in transports {
        let metrics_port = free_port()?;
        let agent = InProcessAgent::start(agent_config(
            dir.path(),
            &url,
            transport,
            Some(&ca_file),
            metrics_port,
            &freezer,
            instrument_port,
        )?);
        let target = instrument.acked().len() + 100;
        eventually(30, "readings over TLS", || async {
            let acked = instrument.acked();
            if acked.len() < target {
                return Ok(false);
            }
            let stored: HashSet<u64> = stored_counter(&db, &freezer).await?.into_iter().collect();
            Ok(acked.iter().take(target).all(|id| stored.contains(id)))
        })
        .await
        .with_context(|| format!("over {transport}"))?;
        let m = metrics(metrics_port).await?;
        ensure!(m["edge_bridge_uplink_up"] == 1.0, "{transport}: {m:?}");
        agent.stop().await?;
    }
    let stored = stored_counter(&db, &freezer).await?;
    ensure!(
        stored.windows(2).all(|w| w[0] < w[1]),
        "out of order or repeated"
    );
    front.abort();
    Ok(())
}
