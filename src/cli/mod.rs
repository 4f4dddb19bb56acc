//! The command line: `caravan serve`, `caravan device ...`, `caravan maps ...`.

mod audit;
mod device;
mod exchange;
mod logging;
mod maps;
mod rules;
pub(crate) mod serve;
mod simulate;
mod token;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::settings::{Overrides, Settings};
use crate::store::{self, StoreUrl};

#[derive(Debug, Parser)]
#[command(
    name = "caravan",
    version,
    about = "Tracks trucks and sealed goods in transit across the borders of Central Asia."
)]
pub struct Cli {
    /// A TOML settings file (values there are overridden by CARAVAN__SECTION__KEY variables,
    /// and those by flags).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where the instance key, checkpoints and the embedded SQLite store live (default
    /// ./caravan-data).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Keep the store in PostgreSQL: postgres://USER:PASSWORD@HOST:PORT/DATABASE (default:
    /// the embedded SQLite in the data directory). Prefer `[store] url` or
    /// CARAVAN__STORE__URL for a URL with a password: a flag shows in the process list.
    #[arg(long, global = true, value_name = "URL")]
    pub store: Option<StoreUrl>,
    /// How the log (on stderr) is written: text for people, json for a log collector.
    #[arg(
        long,
        global = true,
        value_enum,
        env = "CARAVAN_LOG_FORMAT",
        default_value_t
    )]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run Caravan: MQTT broker, ingest, pipeline, store and HTTP API in one process.
    Serve(ServeArgs),
    /// Register and list devices.
    #[command(subcommand)]
    Device(device::DeviceCommand),
    /// Check the map files and ask them about a point.
    #[command(subcommand)]
    Maps(maps::MapsCommand),
    /// Check the transit and risk rules files.
    #[command(subcommand)]
    Rules(rules::RulesCommand),
    /// Make, list and revoke API tokens.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Check the evidence: walk the hash-chained event log.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Drive a simulated fleet on the shipped corridors against a broker and the API.
    Simulate(simulate::SimulateArgs),
    /// The exchange with other national instances: this instance's identity for a peer.
    #[command(subcommand)]
    Exchange(exchange::ExchangeCommand),
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// HTTP API address (default 127.0.0.1:8080; port 0 picks a free port).
    #[arg(long, value_name = "ADDR")]
    pub http: Option<SocketAddr>,
    /// Address of the embedded MQTT broker (default 127.0.0.1:1883).
    #[arg(long, value_name = "ADDR", conflicts_with = "mqtt_url")]
    pub mqtt_listen: Option<SocketAddr>,
    /// Use this external broker instead of the embedded one: mqtt://HOST:PORT.
    #[arg(long, value_name = "URL")]
    pub mqtt_url: Option<String>,
    /// Also run a small simulated fleet (20 vehicles, 60x) so the system has something to show.
    #[arg(long)]
    pub demo: bool,
}

pub use logging::LogFormat;

pub fn init_logging(format: LogFormat) {
    logging::init(format);
}

/// The `caravan` command: parses the command line, runs the command on a multi-threaded
/// runtime and says why it failed, if it did. The binaries around it choose the allocator.
pub fn main() -> std::process::ExitCode {
    use std::process::ExitCode;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: no async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let cli = Cli::parse();
        init_logging(cli.log_format);
        match run(cli).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {}", describe(&e));
                ExitCode::FAILURE
            }
        }
    })
}

/// # Errors
/// Whatever the command failed on, with context.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut overrides = Overrides {
        data_dir: cli.data_dir.clone(),
        store_url: cli.store.clone(),
        ..Overrides::default()
    };
    if let Command::Serve(args) = &cli.command {
        overrides.http_listen = args.http;
        overrides.mqtt_listen = args.mqtt_listen;
        overrides.mqtt_url = args.mqtt_url.clone();
    }
    let settings = Settings::load(cli.config.as_deref(), Settings::env(), &overrides)?;
    match cli.command {
        Command::Serve(args) => serve::run(settings, args.demo).await,
        Command::Audit(command) => audit::run(command, &settings),
        Command::Token(command) => token::run(command, &settings),
        Command::Device(command) => device::run(command, &settings).await,
        Command::Maps(command) => maps::run(command),
        Command::Rules(command) => rules::run(command, &settings),
        Command::Simulate(args) => simulate::run(args, &settings).await,
        Command::Exchange(command) => exchange::run(command, &settings),
    }
}

/// Opens the store the settings name, for a command that works on it directly.
///
/// # Errors
/// An unknown store URL, or the store cannot be opened.
fn open_store(settings: &Settings) -> anyhow::Result<store::Opened> {
    let location = store::Location::of(&settings.store)?;
    store::open_from(&settings.store, settings.dead_letters.policy())
        .with_context(|| format!("opening the store ({location})"))
}

/// An error and its causes on one line, each said once: a cause whose text its parent
/// already quotes (`cannot listen on X: Address already in use`) is not repeated.
pub fn describe(error: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_cause_quoted_by_its_parent_is_said_once() {
        let io = std::io::Error::new(std::io::ErrorKind::AddrInUse, "Address already in use");
        let inner = anyhow::Error::new(io)
            .context("cannot listen on 127.0.0.1:1883: Address already in use");
        let error = inner.context("starting the broker");
        assert_eq!(
            super::describe(&error),
            "starting the broker: cannot listen on 127.0.0.1:1883: Address already in use"
        );
    }
}
