//! Start-up off the critical path: the pipeline rebuilds its state from the store after the
//! API is up.
//!
//! At the scale of a national fleet, reading every device's last state and reports and
//! replaying them through the geofence engine takes seconds. Meanwhile the API answers from
//! the store, `/healthz` says `tracking: restoring`, and messages wait: the ingest queue
//! fills and the broker holds the rest, as it does whenever the pipeline is behind. A stop
//! during the restore abandons it; nothing was taken from the broker that is not redelivered.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use super::{restore, Geo, Input, Pipeline, SeqWindow, TransitStep, Unit};
use crate::health::Health;
use crate::historian::Historian;
use crate::maps::Atlas;
use crate::metrics::Metrics;
use crate::store::StoreReader;
use crate::threads::side_by_side;
use crate::transit::SharedOnRead;

/// Reports replayed per device to rebuild its geofence state (its history window).
const RECENT_REPORTS: usize = 32;

/// What the pipeline needs to restore itself and run.
pub struct Startup {
    pub reader: Arc<dyn StoreReader>,
    pub atlas: Arc<Atlas>,
    pub geo: Geo,
    pub historian: Historian,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    pub committer: mpsc::Sender<Vec<Unit>>,
    /// The transit and risk rules in force.
    pub rules: crate::rules::Rules,
    /// The exchange with peer instances, resumed from the store's cursors.
    pub exchange: Option<crate::exchange::Exchange>,
}

impl Startup {
    /// Restores the pipeline's state, then handles inputs until cancelled. A failed restore
    /// stops the whole app: tracking without its state would raise everything again.
    pub async fn run(self, inputs: mpsc::Receiver<Input>, cancel: CancellationToken) {
        let Startup {
            reader,
            atlas,
            geo,
            historian,
            metrics,
            health,
            committer,
            rules,
            exchange,
        } = self;
        let stop = cancel.clone();
        let hist = historian.clone();
        let counted = metrics.clone();
        let restoring = tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let engine = geo.engine().index().fingerprint().to_owned();
            // The devices and the transits are read side by side: two connections, and at
            // the scale of a national fleet each read takes seconds. The transits, read
            // sooner, are put in their book on their own thread while the devices are read.
            let transits_reader = reader.clone();
            let (snapshot, transits) = side_by_side(
                || {
                    let snapshot = reader.snapshot(SeqWindow::WIDTH, RECENT_REPORTS, &engine);
                    snapshot.map(|s| (s, started.elapsed().as_secs_f64()))
                },
                move || {
                    let itineraries = SharedOnRead::default();
                    let stored = transits_reader.all_transits(&|t| itineraries.take_in(t))?;
                    let book = TransitStep::new(atlas, hist, rules)?
                        .restored(stored, itineraries.into_inner());
                    anyhow::Ok((book, started.elapsed().as_secs_f64()))
                },
            );
            let ((snapshot, devices_s), (mut transits, transits_s)) = (snapshot?, transits?);
            let read_s = started.elapsed().as_secs_f64();
            if let Some(mut exchange) = exchange {
                exchange.resume(reader.exchange_cursors()?);
                transits = transits.with_exchange(exchange);
            }
            let replay = |id: &_, max_seq| {
                reader.device_window(id, max_seq, SeqWindow::WIDTH, RECENT_REPORTS)
            };
            let restored = restore(snapshot, &geo, &mut transits, &stop, &replay)?;
            if let Some((devices, how)) = &restored {
                counted.set_tracks_restored(how.saved, how.replayed);
                info!(
                    devices = devices.len(),
                    saved = how.saved,
                    replayed = how.replayed,
                    refused = how.refused,
                    routes_built = transits.routes_built(),
                    itineraries = transits.itineraries(),
                    devices_s,
                    transits_s,
                    read_s,
                    total_s = started.elapsed().as_secs_f64(),
                    "Tracking state restored."
                );
            }
            anyhow::Ok(restored.map(|(devices, _)| (devices, geo, transits)))
        });
        // A stop does not wait for the store reads to finish: the blocking thread holds no
        // sender of the committer's queue, so the rest of the app can stop without it.
        let restored = tokio::select! {
            restored = restoring => restored,
            () = cancel.cancelled() => return,
        };
        let (devices, geo, transits) = match restored {
            Ok(Ok(Some(parts))) => parts,
            Ok(Ok(None)) => return,
            Ok(Err(e)) => {
                error!(error = %format!("{e:#}"), "Could not restore the tracking state; stopping.");
                cancel.cancel();
                return;
            }
            Err(e) => {
                error!(error = %e, "The restore of the tracking state failed; stopping.");
                cancel.cancel();
                return;
            }
        };
        health.set_tracking_ready();
        let pipeline = Pipeline::resume(devices, geo, transits, committer, metrics, historian);
        pipeline.run(inputs, cancel).await;
    }
}
