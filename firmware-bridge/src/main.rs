//! `firmware-bridge`: Teltonika and JT/T 808 trackers and JT701 e-locks over TCP to Caravan
//! wire contract v1.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use firmware_bridge::queue::QueueLimits;
use firmware_bridge::registry::Registry;
use firmware_bridge::settings::{BrokerArgs, Limits, MqttSettings, Settings};
use tokio_util::sync::CancellationToken;

/// Accepts Teltonika (Codec 8/8E) and JT/T 808 trackers and Jointech JT701 e-locks over TCP and publishes what they
/// report to Caravan's MQTT topics.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// Teltonika listen address (port 0 picks a free port).
    #[arg(long)]
    teltonika: Option<SocketAddr>,
    /// JT/T 808 listen address (port 0 picks a free port).
    #[arg(long)]
    jt808: Option<SocketAddr>,
    /// Jointech JT701 e-lock listen address (port 0 picks a free port).
    #[arg(long)]
    jt701: Option<SocketAddr>,
    /// mqtt://[user[:password]@]host[:port], or mqtts://… for TLS (port 8883 by default).
    #[arg(long, default_value = "mqtt://127.0.0.1:1883")]
    mqtt_url: String,
    /// The bridge's account on the broker (Caravan's gateway account is the bridge's name,
    /// `firmware-bridge`). Overrides the URL's user; the client id is then the username.
    #[arg(long)]
    mqtt_username: Option<String>,
    /// A file holding the account's password (trimmed), so that it is never on the command
    /// line. Otherwise FIRMWARE_BRIDGE_MQTT_PASSWORD, otherwise the URL's password.
    #[arg(long)]
    mqtt_password_file: Option<PathBuf>,
    /// PEM file of the CA certificates that may sign the broker's certificate (mqtts://).
    #[arg(long)]
    mqtt_cafile: Option<PathBuf>,
    /// Defaults to the username, or `firmware-bridge` without one; must equal the username
    /// when one is set.
    #[arg(long)]
    mqtt_client_id: Option<String>,
    /// Allowed devices and their models: a TOML file, or JSON in the shape of Caravan's
    /// `GET /api/v1/devices` answer.
    #[arg(long)]
    registry: PathBuf,
    /// Holds the disk queue.
    #[arg(long, default_value = "./bridge-data")]
    data_dir: PathBuf,
    /// Prometheus text on GET /metrics at this address.
    #[arg(long)]
    metrics: Option<SocketAddr>,
    /// Identified device connections open at once (all protocols).
    #[arg(long, default_value_t = 10_000)]
    max_connections: usize,
    /// Connections not yet identified; beyond this a new one evicts the oldest.
    #[arg(long, default_value_t = 64)]
    max_unidentified: usize,
    /// Seconds a new connection has to identify itself (IMEI, JT/T 808 authentication).
    #[arg(long, default_value_t = 10)]
    identify_timeout_secs: u64,
    #[arg(long, default_value_t = 64 * 1024)]
    max_frame_bytes: usize,
    /// Seconds a frame has to arrive whole, from its first byte.
    #[arg(long, default_value_t = 60)]
    frame_timeout_secs: u64,
    #[arg(long, default_value_t = 600)]
    idle_timeout_secs: u64,
    /// Disk queue budget; device data is refused (not acknowledged) beyond it.
    #[arg(long, default_value_t = 1024)]
    queue_budget_mib: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    if cli.teltonika.is_none() && cli.jt808.is_none() && cli.jt701.is_none() {
        anyhow::bail!("nothing to listen on: give --teltonika, --jt808 and/or --jt701");
    }
    let registry = Registry::load(&cli.registry)
        .with_context(|| format!("loading {}", cli.registry.display()))?;
    tracing::info!(devices = registry.len(), "Loaded the device registry.");
    let settings = Settings {
        teltonika: cli.teltonika,
        jt808: cli.jt808,
        jt701: cli.jt701,
        metrics: cli.metrics,
        mqtt: MqttSettings::from_args(&BrokerArgs {
            url: cli.mqtt_url,
            client_id: cli.mqtt_client_id,
            username: cli.mqtt_username,
            password_file: cli.mqtt_password_file,
            password_env: std::env::var("FIRMWARE_BRIDGE_MQTT_PASSWORD").ok(),
            ca_file: cli.mqtt_cafile,
        })?,
        registry: Arc::new(registry),
        data_dir: cli.data_dir,
        limits: Limits {
            max_connections: cli.max_connections,
            max_frame_bytes: cli.max_frame_bytes,
            idle_timeout: Duration::from_secs(cli.idle_timeout_secs),
            frame_timeout: Duration::from_secs(cli.frame_timeout_secs),
            max_unidentified: cli.max_unidentified.max(1),
            identify_timeout: Duration::from_secs(cli.identify_timeout_secs),
        },
        queue: QueueLimits {
            budget_bytes: cli.queue_budget_mib * 1024 * 1024,
            ..QueueLimits::default()
        },
    };
    let cancel = CancellationToken::new();
    let bridge = firmware_bridge::run(settings, cancel.clone()).await?;
    for (name, addr) in [
        ("teltonika", bridge.teltonika),
        ("jt808", bridge.jt808),
        ("jt701", bridge.jt701),
        ("metrics", bridge.metrics_addr),
    ] {
        if let Some(addr) = addr {
            println!("{name} listening on {addr}");
        }
    }
    shutdown_signal().await?;
    tracing::info!("Stopping.");
    cancel.cancel();
    bridge.stopped().await;
    Ok(())
}

/// Ctrl-C, or SIGTERM from systemd or a container runtime.
async fn shutdown_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result.context("waiting for Ctrl-C"),
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")
    }
}
