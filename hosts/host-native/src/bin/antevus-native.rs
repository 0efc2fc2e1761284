//! `antevus-native`: every route on one native server, configured from the
//! environment (see `shared::config::VARS`); every setting is checked at start-up.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let config = host_native::config_from_env();
    config.check()?;
    let addr = std::env::var("ANTEVUS_LISTEN").unwrap_or_else(|_| "127.0.0.1:8787".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "antevus native host listening");
    host_native::serve(listener, config, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
