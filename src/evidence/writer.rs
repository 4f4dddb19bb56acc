//! Writes signed checkpoints while Caravan runs: every `checkpoint_every_s` when the chains
//! have grown, and once more at shutdown after the last commit.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::checkpoint::{self, Checkpoint};
use super::key::InstanceKey;
use crate::store::{ChainHead, StoreReader};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvidenceSettings {
    /// Where checkpoints are appended. Put it on another disk or machine than the data
    /// directory (docs/evidence.md says why); unset, it is `checkpoints/` in the data
    /// directory, which detects a store cut back by accident but not by someone who holds
    /// the whole directory.
    pub checkpoint_dir: Option<PathBuf>,
    pub checkpoint_every_s: u64,
}

impl Default for EvidenceSettings {
    fn default() -> Self {
        Self {
            checkpoint_dir: None,
            checkpoint_every_s: 60,
        }
    }
}

impl EvidenceSettings {
    pub fn checkpoint_dir(&self, data_dir: &std::path::Path) -> PathBuf {
        self.checkpoint_dir
            .clone()
            .unwrap_or_else(|| data_dir.join("checkpoints"))
    }
}

pub struct CheckpointWriter {
    reader: Arc<dyn StoreReader>,
    pub key: Arc<InstanceKey>,
    dir: PathBuf,
    last: Option<ChainHead>,
}

impl CheckpointWriter {
    pub fn new(reader: Arc<dyn StoreReader>, key: Arc<InstanceKey>, dir: PathBuf) -> Self {
        Self {
            reader,
            key,
            dir,
            last: None,
        }
    }

    /// Signs and appends the current heads unless they were the last ones written.
    ///
    /// # Errors
    /// The store cannot be read or the file written.
    pub fn write(&mut self) -> anyhow::Result<Option<Checkpoint>> {
        let head = self.reader.chain_head()?;
        if self.last.as_ref() == Some(&head) {
            return Ok(None);
        }
        let roots = self.reader.chain_roots(&head)?;
        let c = Checkpoint::sign(&self.key, head.clone(), roots, chrono::Utc::now());
        checkpoint::append(&self.dir, &c)?;
        self.last = Some(head);
        Ok(Some(c))
    }

    /// Runs until `stop`, then writes the final checkpoint.
    pub fn spawn(mut self, every: Duration, stop: CancellationToken) -> JoinHandle<()> {
        tokio::task::spawn_blocking(move || {
            let runtime = tokio::runtime::Handle::current();
            loop {
                let stopped = runtime.block_on(async {
                    tokio::select! {
                        () = stop.cancelled() => true,
                        () = tokio::time::sleep(every) => false,
                    }
                });
                match self.write() {
                    Ok(Some(c)) if stopped => {
                        info!(
                            events = c.head.events,
                            batches = c.head.batches,
                            "Final evidence checkpoint written."
                        );
                    }
                    Ok(_) => {}
                    Err(error) => warn!(%error, "Writing an evidence checkpoint failed."),
                }
                if stopped {
                    break;
                }
            }
        })
    }
}

/// The checkpoint writer's stop token and task.
pub type Running = (CancellationToken, JoinHandle<()>);

/// Loads (or makes) the instance key and starts the checkpoint writer.
///
/// # Errors
/// The key cannot be loaded or made.
pub fn start(
    settings: &crate::settings::Settings,
    reader: Arc<dyn StoreReader>,
) -> Result<(Arc<InstanceKey>, Running), super::key::KeyError> {
    let key = Arc::new(InstanceKey::load_or_create(&settings.store.data_dir)?);
    let dir = settings.evidence.checkpoint_dir(&settings.store.data_dir);
    let stop = CancellationToken::new();
    let every = Duration::from_secs(settings.evidence.checkpoint_every_s.max(1));
    let task = CheckpointWriter::new(reader, key.clone(), dir).spawn(every, stop.clone());
    Ok((key, (stop, task)))
}
