//! `caravan exchange`: what the operator of a peer instance needs to add this one.

use anyhow::Context as _;

use crate::evidence::InstanceKey;
use crate::settings::Settings;

#[derive(Debug, clap::Subcommand)]
pub enum ExchangeCommand {
    /// Print this instance's `[[exchange.peers]]` entry, to give the operator of a peer:
    /// its URL, countries and public key. (The key is made now if the data directory has
    /// none, as the first start would.)
    Identity {
        /// The URL the peer reaches this instance at (default: `[exchange] url`).
        #[arg(long, value_name = "URL")]
        url: Option<String>,
        /// The name the peer should know this instance by.
        #[arg(long, value_name = "NAME", default_value = "CHANGE-ME")]
        name: String,
    },
}

/// # Errors
/// The key cannot be read or made, or no URL is known.
pub fn run(command: ExchangeCommand, settings: &Settings) -> anyhow::Result<()> {
    match command {
        ExchangeCommand::Identity { url, name } => {
            let url = url.or_else(|| settings.exchange.url.clone()).context(
                "no URL for this instance: pass --url or set [exchange] url in the config",
            )?;
            anyhow::ensure!(
                !settings.exchange.countries.is_empty(),
                "set this instance's countries first ([exchange] countries = [\"KG\"]): a peer needs them"
            );
            let key = InstanceKey::load_or_create(&settings.store.data_dir)?;
            print!("{}", identity(&name, &url, settings, &key));
            Ok(())
        }
    }
}

fn identity(name: &str, url: &str, settings: &Settings, key: &InstanceKey) -> String {
    let countries: Vec<String> = settings
        .exchange
        .countries
        .iter()
        .map(|c| format!("{:?}", c.as_str()))
        .collect();
    format!(
        "# Add to the peer's config ([exchange]), then restart it. Key fingerprint: {}\n\
         [[exchange.peers]]\n\
         name = {name:?}\n\
         url = {url:?}\n\
         countries = [{}]\n\
         key = {:?}\n",
        key.fingerprint(),
        countries.join(", "),
        key.public_hex(),
    )
}
