//! `caravan-load`: end-to-end load benchmarks of Caravan on this machine, each measured
//! beside a baseline in the same run (see BENCHMARKS.md).
//!
//! A separate binary rather than a `caravan` subcommand: it starts brokers and servers as
//! child processes, reads /proc and floods loopback ports, which an operator's `caravan`
//! should never do. It runs `caravan serve` from the same build directory.

mod api;
mod fleet;
mod latency;
mod memory;
mod postgres;
mod scale;
mod seed;
mod server;
mod throughput;
mod traffic;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "caravan-load",
    about = "End-to-end load benchmarks of Caravan (loopback only)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Fixes per second from publish to commit, against the broker alone.
    Throughput(throughput::ThroughputArgs),
    /// Publish-to-visible-in-API latency at a steady rate.
    Latency(latency::LatencyArgs),
    /// Many devices upload their backlogs at once: drain time, peak memory, nothing lost.
    Burst(memory::BurstArgs),
    /// Resident memory per tracked device.
    Memory(memory::MemoryArgs),
    /// Fleets of trucks on transits: start-up, memory, stop, and throughput, each beside
    /// its baseline.
    Scale(scale::ScaleArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Throughput(args) => throughput::run(args).await,
            Command::Latency(args) => latency::run(args).await,
            Command::Burst(args) => memory::burst(args).await,
            Command::Memory(args) => memory::run(args).await,
            Command::Scale(args) => scale::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
