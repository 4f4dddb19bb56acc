//! `caravan token create|list|revoke`, straight on the store.

use anyhow::bail;
use chrono::Utc;
use clap::Subcommand;

use crate::auth::Role;
use crate::settings::Settings;
use crate::store::Write;
use crate::tokens;

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a token and print it once; only its hash is kept.
    Create {
        /// coordinator, customs:CC, post:BCP_ID:CC or carrier:ID
        #[arg(long)]
        role: Role,
        /// Who holds it, e.g. "Irkeshtam KG shift B".
        #[arg(long)]
        name: String,
    },
    /// List tokens (never their text).
    List,
    /// Revoke a token by its id; it stops working at once.
    Revoke { id: i64 },
}

pub fn run(command: TokenCommand, settings: &Settings) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create { role, name } => {
            // The same maps the server uses: a role naming a place they lack would see nothing.
            let (atlas, _) = crate::atlas::load(&settings.maps, settings.geofence.clone())?;
            role.check(&atlas)?;
            let text = tokens::create_in(settings, &name, role.clone())?;
            println!("{text}");
            eprintln!("Token for {name} ({role}). It is shown only now; keep it secret.");
        }
        TokenCommand::List => {
            let (_, reader) = super::open_store(settings)?;
            for t in reader.tokens()? {
                let state = t
                    .revoked_at
                    .map_or_else(|| "active".to_owned(), |at| format!("revoked {at}"));
                println!("{}\t{}\t{}\t{}", t.id, t.role, t.name, state);
            }
        }
        TokenCommand::Revoke { id } => {
            let (mut writer, reader) = super::open_store(settings)?;
            let Some(token) = reader.tokens()?.into_iter().find(|t| t.id == id) else {
                bail!("no token {id}");
            };
            writer.commit(&[Write::RevokeToken { id, at: Utc::now() }])?;
            println!("Revoked token {id} ({}, {}).", token.name, token.role);
        }
    }
    Ok(())
}
