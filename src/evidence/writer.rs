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
use crate::store::{ChainFrontiers, ChainHead, StoreReader};

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
    /// Both chains' trees as far as the last checkpoint read them.
    frontiers: ChainFrontiers,
}

impl CheckpointWriter {
    pub fn new(reader: Arc<dyn StoreReader>, key: Arc<InstanceKey>, dir: PathBuf) -> Self {
        Self {
            reader,
            key,
            dir,
            last: None,
            frontiers: ChainFrontiers::default(),
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
        self.reader
            .extend_chain_frontiers(&mut self.frontiers, &head)?;
        let roots = self.frontiers.roots();
        let c = Checkpoint::sign(&self.key, head.clone(), roots, chrono::Utc::now());
        checkpoint::append(&self.dir, &c)?;
        self.last = Some(head);
        Ok(Some(c))
    }

    /// Runs until `stop`, then writes the final checkpoint. The waiting is async and each
    /// write runs on the blocking pool, so a runtime that shuts down (a start that failed
    /// half-way) simply drops the task.
    pub fn spawn(mut self, every: Duration, stop: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                let stopped = tokio::select! {
                    () = stop.cancelled() => true,
                    () = tokio::time::sleep(every) => false,
                };
                let written = tokio::task::spawn_blocking(move || {
                    let written = self.write();
                    (self, written)
                })
                .await;
                let Ok((writer, written)) = written else {
                    warn!("The evidence checkpoint writer was cut off.");
                    return;
                };
                self = writer;
                match written {
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

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::device::Device;
    use crate::store::{self, LoggedEvent, StoreWriter, Write};
    use crate::telemetry::{DeviceId, Fix, GeoPoint, Report, ReportBody};

    fn device() -> DeviceId {
        DeviceId::parse("KG-TRK-0001").unwrap()
    }

    /// One commit: a report and an event, both chained.
    fn commit(writer: &mut dyn StoreWriter, seq: u64) {
        let t = Utc
            .timestamp_opt(1_795_767_330 + seq as i64 * 30, 0)
            .unwrap();
        let report = Write::Report(Report {
            device_id: device(),
            received_at: t,
            body: ReportBody::Fix(Fix {
                seq,
                t,
                point: GeoPoint {
                    lat: 39.681,
                    lon: 73.9215,
                },
                speed_kmh: None,
                heading_deg: None,
                hdop: None,
                sats: None,
                alt_m: None,
            }),
        });
        let event = Write::Event(LoggedEvent {
            kind: "test.event".into(),
            device_id: Some(device()),
            transit_id: None,
            occurred_at: t,
            detected_at: t,
            late: false,
            actor: None,
            body: serde_json::json!({"seq": seq}),
        });
        writer.commit(&[report, event]).unwrap();
    }

    #[test]
    fn checkpoints_built_incrementally_carry_the_roots_of_the_whole_store() {
        let dir = tempfile::tempdir().unwrap();
        let (mut writer, reader) = store::open(dir.path()).unwrap();
        writer
            .commit(&[Write::Device(Device {
                device_id: device(),
                carrier: "c".into(),
                plate: None,
                registered_at: Utc.timestamp_opt(1_795_767_000, 0).unwrap(),
            })])
            .unwrap();
        let reader: Arc<dyn StoreReader> = Arc::new(reader);
        let key = Arc::new(InstanceKey::load_or_create(dir.path()).unwrap());
        let mut checkpoints = CheckpointWriter::new(reader.clone(), key, dir.path().join("cp"));
        let mut seq = 1;
        // Growing by uneven steps, so that the frontier is extended across every shape of
        // tree (a perfect one, one peak left over, several).
        for step in [1, 2, 5, 1, 8, 3] {
            for _ in 0..step {
                commit(&mut writer, seq);
                seq += 1;
            }
            let c = checkpoints.write().unwrap().expect("the chains grew");
            let full = reader.chain_roots(&c.head).unwrap();
            assert_eq!((c.events_root.clone(), c.batches_root.clone()), full);
            assert_eq!(c.head.batches, seq as i64 - 1);
        }
        assert!(checkpoints.write().unwrap().is_none(), "nothing new");
    }
}
