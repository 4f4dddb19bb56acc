//! `caravan audit verify`: proves the event log has not been edited since it was written.

use anyhow::bail;
use clap::Subcommand;

use crate::settings::Settings;
use crate::store::{self, StoreReader};

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the event log's hash chain and name the first record that breaks it.
    Verify,
}

pub fn run(command: AuditCommand, settings: &Settings) -> anyhow::Result<()> {
    match command {
        AuditCommand::Verify => verify(settings),
    }
}

fn verify(settings: &Settings) -> anyhow::Result<()> {
    let dir = &settings.store.data_dir;
    if !dir.join("caravan.sqlite").is_file() {
        bail!("no Caravan store in {}", dir.display());
    }
    let (_, reader) = store::open(dir)?;
    let report = reader.verify_event_log()?;
    match report.first_broken {
        None => {
            println!(
                "The event log is intact: {} records, every link checks.",
                report.rows
            );
            Ok(())
        }
        Some((id, why)) => bail!("the event log is broken at record {id}: {why}"),
    }
}
