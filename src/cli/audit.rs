//! `caravan audit verify`: proves the record has not been edited, cut back or rewritten since
//! it was written; `caravan audit key` prints the instance's public key.

use std::path::PathBuf;

use anyhow::{bail, Context as _};
use clap::Subcommand;

use crate::evidence::audit::{audit, AuditReport, Trust};
use crate::evidence::key::{self, InstanceKey, KEY_FILE};
use crate::evidence::{bundle, checkpoint};
use crate::settings::Settings;
use crate::store;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the event log's chain, every stored report against its batch, the chain heads
    /// against the signed checkpoints, and every transit against its rebuild from the log.
    Verify {
        /// The instance's public key (64 hex digits) as published; by default the one in the
        /// data directory, which someone who holds the machine could have replaced.
        #[arg(long, value_name = "PUBKEY")]
        key: Option<String>,
        /// Another directory of checkpoints to compare against (e.g. a witness's copy); the
        /// configured `[evidence] checkpoint_dir` is always read.
        #[arg(long, value_name = "DIR")]
        checkpoints: Vec<PathBuf>,
    },
    /// Print the instance's public key and its fingerprint.
    Key,
    /// Write one transit's evidence bundle: its records, positions and inclusion proofs up
    /// to a checkpoint signed now (also appended to the checkpoint file).
    Export {
        #[arg(long, value_name = "ID")]
        transit: String,
        /// Where to write it (default: evidence-<ID>.json).
        #[arg(long, short, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Check a bundle offline with nothing but the file and the issuer's public key.
    VerifyBundle {
        file: PathBuf,
        /// The issuer's public key, 64 hex digits (`caravan audit key` on the issuer).
        #[arg(long, value_name = "PUBKEY")]
        key: String,
    },
}

/// Larger files are refused before they are read.
const MAX_BUNDLE_BYTES: u64 = 1 << 30;

pub fn run(command: AuditCommand, settings: &Settings) -> anyhow::Result<()> {
    match command {
        AuditCommand::Verify { key, checkpoints } => verify(settings, key, checkpoints),
        AuditCommand::Export { transit, out } => export(settings, &transit, out),
        AuditCommand::VerifyBundle { file, key } => verify_bundle(&file, &key),
        AuditCommand::Key => {
            let key = InstanceKey::load(&settings.store.data_dir.join(KEY_FILE)).context(
                "reading the instance key (it is made when `caravan serve` first starts)",
            )?;
            println!("ed25519 {}", key.public_hex());
            println!("fingerprint {}", key.fingerprint());
            Ok(())
        }
    }
}

fn verify(settings: &Settings, pinned: Option<String>, extra: Vec<PathBuf>) -> anyhow::Result<()> {
    let dir = &settings.store.data_dir;
    existing_store(settings)?;
    let public = match pinned {
        Some(text) => Some(key::parse_public(&text).context("--key takes 64 hex digits")?),
        None => match InstanceKey::load(&dir.join(KEY_FILE)) {
            Ok(k) => key::parse_public(&k.public_hex()),
            Err(e) => {
                eprintln!("warning: no instance key ({e}); checkpoint signatures are not checked");
                None
            }
        },
    };
    let mut checkpoint_dirs = vec![settings.evidence.checkpoint_dir(dir)];
    checkpoint_dirs.extend(extra);
    let trust = Trust {
        checkpoint_dirs,
        public,
    };
    let (_, reader) = super::open_store(settings)?;
    let mut last = std::time::Instant::now();
    let mut progress = |batches: i64, reports: u64| {
        if last.elapsed().as_secs() >= 5 {
            eprintln!("... {batches} report batches, {reports} reports checked");
            last = std::time::Instant::now();
        }
    };
    let report = audit(reader.as_ref(), &trust, &mut progress)?;
    print(&report, &trust);
    if report.is_intact() {
        Ok(())
    } else {
        bail!(
            "the record is NOT intact: {} problems, listed above",
            count(&report)
        )
    }
}

/// An audit of a store that is not there would make an empty one and call it intact. An
/// SQLite store is a file that must exist; a PostgreSQL database is named on purpose.
fn existing_store(settings: &Settings) -> anyhow::Result<()> {
    if let store::Location::Sqlite(dir) = store::Location::of(&settings.store)? {
        if !dir.join(store::SQLITE_FILE).is_file() {
            bail!("no Caravan store in {}", dir.display());
        }
    }
    Ok(())
}

fn count(r: &AuditReport) -> usize {
    usize::from(r.events_broken.is_some())
        + r.positions.problems.len()
        + r.positions.more_problems as usize
        + r.checkpoint_problems.len()
        + r.transit_problems.len()
}

fn print(r: &AuditReport, trust: &Trust) {
    match &r.events_broken {
        None => println!(
            "The event log is intact: {} records, every link checks.",
            r.events
        ),
        Some((id, why)) => eprintln!("BROKEN: the event log is broken at record {id}: {why}"),
    }
    let p = &r.positions;
    match p.verified_through {
        Some((batch, ms)) => println!(
            "Reports: {} in {} batches; verified through batch {batch} (committed {}).",
            p.reports,
            p.batches,
            chrono::DateTime::from_timestamp_millis(ms)
                .map(|t| t.to_rfc3339())
                .unwrap_or_default()
        ),
        None => println!(
            "Reports: {} in {} batches; none verified.",
            p.reports, p.batches
        ),
    }
    if p.not_covered > 0 {
        println!("  {} reports were stored before reports were bound into the chain and are not covered.", p.not_covered);
    }
    for problem in &p.problems {
        eprintln!("BROKEN: {problem}");
    }
    if p.more_problems > 0 {
        eprintln!("BROKEN: and {} more report problems", p.more_problems);
    }
    let signer = trust
        .public
        .map(|k| key::fingerprint(&k))
        .unwrap_or_else(|| "(signatures not checked)".into());
    match &r.newest_matching {
        Some(c) => println!(
            "Checkpoints: {} read; the newest that matches, signed by {signer}, is of {} ({} records, {} batches).",
            r.checkpoints,
            c.at.to_rfc3339(),
            c.head.events,
            c.head.batches
        ),
        None => println!("Checkpoints: {} read, none matches the store.", r.checkpoints),
    }
    for problem in &r.checkpoint_problems {
        eprintln!("BROKEN: {problem}");
    }
    println!(
        "Transits: {} rebuilt from the event log and compared.",
        r.transits
    );
    for problem in &r.transit_problems {
        eprintln!("BROKEN: {problem}");
    }
}

fn export(settings: &Settings, transit: &str, out: Option<PathBuf>) -> anyhow::Result<()> {
    let dir = &settings.store.data_dir;
    existing_store(settings)?;
    let key = InstanceKey::load(&dir.join(KEY_FILE))
        .context("reading the instance key (it is made when `caravan serve` first starts)")?;
    let (_, reader) = super::open_store(settings)?;
    let Some(bundle) = bundle::export(reader.as_ref(), &key, transit, chrono::Utc::now())? else {
        bail!("no transit {transit} in the store");
    };
    let checkpoints = settings.evidence.checkpoint_dir(dir);
    checkpoint::append(&checkpoints, &bundle.checkpoint)
        .with_context(|| format!("appending the checkpoint to {}", checkpoints.display()))?;
    let out = out.unwrap_or_else(|| PathBuf::from(format!("evidence-{transit}.json")));
    std::fs::write(&out, serde_json::to_vec_pretty(&bundle)?)
        .with_context(|| format!("writing {}", out.display()))?;
    println!("Wrote {} to {}.", bundle::describe(&bundle), out.display());
    Ok(())
}

fn verify_bundle(file: &std::path::Path, key: &str) -> anyhow::Result<()> {
    let public = bundle::public_key(key).map_err(anyhow::Error::msg)?;
    let size = std::fs::metadata(file)
        .with_context(|| format!("reading {}", file.display()))?
        .len();
    if size > MAX_BUNDLE_BYTES {
        bail!(
            "{} is {size} bytes, more than a bundle may be",
            file.display()
        );
    }
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let bundle: bundle::Bundle = serde_json::from_slice(&bytes)
        .map_err(|e| anyhow::anyhow!("{} is not an evidence bundle: {e}", file.display()))?;
    let verdict = bundle::verify(&bundle, &public);
    for line in &verdict.proven {
        println!("PROVEN: {line}");
    }
    for line in &verdict.not_proven {
        println!("NOT PROVEN: {line}");
    }
    for line in &verdict.broken {
        eprintln!("BROKEN: {line}");
    }
    if verdict.holds() {
        Ok(())
    } else {
        bail!(
            "the bundle does NOT verify: {} problems, listed above",
            verdict.broken.len()
        )
    }
}
