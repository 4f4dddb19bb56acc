//! `firmware-bridge`: Teltonika and JT/T 808 trackers over TCP to Caravan wire contract v1.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use firmware_bridge::queue::QueueLimits;
use firmware_bridge::registry::Registry;
use firmware_bridge::settings::{Limits, MqttSettings, Settings};
use tokio_util::sync::CancellationToken;

/// Accepts Teltonika (Codec 8/8E) and JT/T 808 trackers over TCP and publishes what they
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
    /// mqtt://[user:password@]host[:port]
    #[arg(long, default_value = "mqtt://127.0.0.1:1883")]
    mqtt_url: String,
    #[arg(long, default_value = "firmware-bridge")]
    mqtt_client_id: String,
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
    #[arg(long, default_value_t = 10_000)]
    max_connections: usize,
    #[arg(long, default_value_t = 64 * 1024)]
    max_frame_bytes: usize,
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
    if cli.teltonika.is_none() && cli.jt808.is_none() {
        anyhow::bail!("nothing to listen on: give --teltonika and/or --jt808");
    }
    let registry = Registry::load(&cli.registry)
        .with_context(|| format!("loading {}", cli.registry.display()))?;
    tracing::info!(devices = registry.len(), "Loaded the device registry.");
    let settings = Settings {
        teltonika: cli.teltonika,
        jt808: cli.jt808,
        metrics: cli.metrics,
        mqtt: MqttSettings::from_url(&cli.mqtt_url, &cli.mqtt_client_id)?,
        registry: Arc::new(registry),
        data_dir: cli.data_dir,
        limits: Limits {
            max_connections: cli.max_connections,
            max_frame_bytes: cli.max_frame_bytes,
            idle_timeout: Duration::from_secs(cli.idle_timeout_secs),
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
