//! `caravan rules check [FILE]`: validate an edited rules file before the server reads it.

use std::path::PathBuf;

use clap::Subcommand;

use crate::rules::{self, Rules};
use crate::settings::Settings;

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Check a rules file (`transit.toml` or `risk.toml`); without FILE, check the rules the
    /// server would load ([rules] dir, else DATA_DIR/rules/, else the built-in ones) and say
    /// where each comes from.
    Check {
        /// The edited file.
        file: Option<PathBuf>,
    },
}

/// # Errors
/// The file, or a rules file the server would load, is not valid.
pub fn run(command: RulesCommand, settings: &Settings) -> anyhow::Result<()> {
    match command {
        RulesCommand::Check { file: Some(file) } => {
            let kind = rules::check_file(&file)?;
            println!("{}: valid {kind}.", file.display());
        }
        RulesCommand::Check { file: None } => {
            let loaded = Rules::load(&settings.rules, &settings.store.data_dir)?;
            println!("transit rules: {} (valid)", loaded.transit_from);
            println!("risk rules: {} (valid)", loaded.risk_from);
        }
    }
    Ok(())
}
