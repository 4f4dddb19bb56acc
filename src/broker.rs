//! The embedded MQTT broker (rumqttd), for running on defaults with nothing else installed.
//!
//! rumqttd runs its own threads and runtimes and cannot be stopped; it ends with the process.
//! It does not report the port it bound, so the address is reserved here first: that turns
//! "port 0" into a concrete free port and a busy port into a clear error before start.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};
use tracing::error;

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("cannot listen for MQTT on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the embedded MQTT broker did not start listening on {0} within 5 s")]
    NotListening(SocketAddr),
}

/// Largest MQTT payload the broker takes. Above the ingest's own limit on purpose, so that
/// oversize messages reach the ingest and are refused with a reason instead of vanishing.
const MAX_PAYLOAD: usize = 1024 * 1024;

/// Starts the broker on `listen` and returns the address it listens on.
///
/// # Errors
/// The address is taken or cannot be bound, or the broker did not come up.
pub fn start(listen: SocketAddr) -> Result<SocketAddr, BrokerError> {
    let addr = reserve(listen)?;
    let mut broker = Broker::new(config(addr));
    std::thread::Builder::new()
        .name("mqtt-broker".into())
        .spawn(move || {
            if let Err(e) = broker.start() {
                error!(error = %e, "The embedded MQTT broker stopped.");
            }
        })
        .map_err(|source| BrokerError::Bind { addr, source })?;
    wait_listening(addr)?;
    Ok(addr)
}

fn reserve(listen: SocketAddr) -> Result<SocketAddr, BrokerError> {
    let bind_error = |source| BrokerError::Bind {
        addr: listen,
        source,
    };
    let probe = TcpListener::bind(listen).map_err(bind_error)?;
    probe.local_addr().map_err(bind_error)
}

fn wait_listening(addr: SocketAddr) -> Result<(), BrokerError> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Err(BrokerError::NotListening(addr))
}

fn config(addr: SocketAddr) -> Config {
    let server = ServerSettings {
        name: "caravan-v4".into(),
        listen: addr,
        tls: None,
        next_connection_delay_ms: 1,
        connections: ConnectionSettings {
            connection_timeout_ms: 60_000,
            max_payload_size: MAX_PAYLOAD,
            max_inflight_count: 500,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
    };
    Config {
        id: 0,
        router: RouterConfig {
            max_connections: 100_010,
            max_outgoing_packet_count: 200,
            // rumqttd keeps one log per subscription filter, and a subscriber that falls
            // further behind than the log holds has the rest skipped: it cannot slow the
            // publishers down. The ingest reads through a single filter, so this is the burst
            // it can absorb (512 MiB, about four million fixes), taken only as it fills. A
            // deployment that must never lose a burst uses Mosquitto (see deploy/).
            max_segment_size: 32 * 1024 * 1024,
            max_segment_count: 16,
            ..RouterConfig::default()
        },
        v4: Some(HashMap::from([("1".to_owned(), server)])),
        ..Config::default()
    }
}
