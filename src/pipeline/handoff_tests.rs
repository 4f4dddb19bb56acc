//! The hand-off from the pipeline to the committer: what waits is taken and handed over
//! together, in order, and a full commit queue stops intake.

use std::sync::Arc;

use bytes::Bytes;
use chrono::Utc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Ack, Delivery, Geo, Input, Pipeline, TransitStep, Unit, HANDOFF_BATCH};
use crate::geofence::GeofenceIndex;
use crate::historian::Historian;
use crate::maps::Atlas;
use crate::metrics::Metrics;
use crate::store::{Snapshot, Write};
use crate::telemetry::{Decoded, DeviceId};

fn pipeline(committer: mpsc::Sender<Vec<Unit>>) -> Pipeline {
    let atlas = Arc::new(Atlas::embedded().expect("the shipped maps load"));
    let index = Arc::new(GeofenceIndex::new(&atlas));
    let rules = crate::rules::Rules::built_in().expect("the shipped rules");
    let transits = TransitStep::new(atlas.clone(), Historian::default(), rules)
        .expect("the shipped rules load");
    Pipeline::new(
        Snapshot::default(),
        Geo::new(index, &atlas),
        transits,
        committer,
        Arc::new(Metrics::new()),
        Historian::default(),
    )
}

/// A message of a device that is not registered: it is dead-lettered, and acknowledged
/// once that is committed.
fn message(pkid: u16) -> Input {
    let device = DeviceId::parse(&format!("stranger-{}", pkid % 3)).expect("a valid id");
    Input::Delivery(Delivery {
        topic: format!("caravan/v1/dev/{device}/pos"),
        payload: Bytes::from_static(b"{}"),
        received_at: Utc::now(),
        decoded: Decoded {
            device_id: Some(device),
            reports: Vec::new(),
            rejects: Vec::new(),
        },
        ack: Some(Ack::Broker(pkid)),
    })
}

/// Whether `unit` is the state saved at the stop, which follows everything else.
fn is_save(unit: &Unit) -> bool {
    matches!(unit.writes.as_slice(), [Write::SavedTracks(_)])
}

/// The packet ids handed over, leaving out the state saved at the stop.
fn pkids(units: &[Unit]) -> Vec<u16> {
    units
        .iter()
        .filter(|unit| !is_save(unit))
        .map(|unit| match unit.ack {
            Some(Ack::Broker(pkid)) => pkid,
            _ => 0,
        })
        .collect()
}

#[tokio::test]
async fn what_waits_is_handed_to_the_committer_at_once_in_order() {
    let (committer, mut units) = mpsc::channel(8);
    let (inputs, rx) = mpsc::channel(1024);
    for pkid in 1..=100 {
        inputs.try_send(message(pkid)).expect("room");
    }
    drop(inputs);
    // The queue to the committer has room for 8 hand-offs and nothing takes them yet.
    let run = pipeline(committer).run(rx, CancellationToken::new());
    tokio::time::timeout(std::time::Duration::from_secs(20), run)
        .await
        .expect("the pipeline handed everything over and stopped");

    let batch = units.recv().await.expect("a hand-off");
    assert_eq!(pkids(&batch), (1..=100).collect::<Vec<u16>>());
    assert!(
        batch.iter().all(|unit| unit.writes.len() == 1),
        "each message's dead letter is in its own unit"
    );
    let save = units.recv().await.expect("the state saved at the stop");
    assert!(save.iter().all(is_save));
    assert!(units.recv().await.is_none(), "one hand-off for the lot");
}

#[tokio::test]
async fn a_full_commit_queue_stops_the_pipeline_taking_inputs() {
    let (committer, mut units) = mpsc::channel(1);
    let (inputs, rx) = mpsc::channel(4 * HANDOFF_BATCH);
    let sent = 4 * HANDOFF_BATCH;
    for n in 0..sent {
        inputs
            .try_send(message(u16::try_from(n).expect("small")))
            .expect("room");
    }
    let cancel = CancellationToken::new();
    let running = tokio::spawn(pipeline(committer).run(rx, cancel.clone()));
    // One batch fills the commit queue and a second waits to go in: the rest stays queued,
    // and the ingest in front of it stops reading.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while inputs.capacity() < 2 * HANDOFF_BATCH {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the pipeline took nothing"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(inputs.capacity(), 2 * HANDOFF_BATCH);

    // As the committer takes batches, the pipeline goes on, in order, and drains at a stop.
    cancel.cancel();
    let mut handed = Vec::new();
    while let Some(batch) = units.recv().await {
        assert!(batch.len() <= HANDOFF_BATCH);
        handed.extend(pkids(&batch));
    }
    running.await.expect("the pipeline stops");
    let expected: Vec<u16> = (0..sent)
        .map(|n| u16::try_from(n).expect("small"))
        .collect();
    assert_eq!(handed, expected);
}
