//! The state saved at a stop: all of it after a clean one, none of it when the stop left
//! raised events uncommitted.

use std::sync::Arc;

use chrono::{Duration, Utc};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Geo, Pipeline, TransitStep, Unit};
use crate::device::{Device, DeviceState};
use crate::geofence::GeofenceIndex;
use crate::historian::Historian;
use crate::maps::Atlas;
use crate::metrics::Metrics;
use crate::store::{Snapshot, Write};
use crate::telemetry::{DeviceId, Fix, GeoPoint, Report, ReportBody};

const TRUCKS: usize = 3;

/// Trucks last heard three hours ago, long past any allowance: the first silence check
/// raises a loss for each.
fn silent_fleet() -> (Pipeline, mpsc::Receiver<Vec<Unit>>) {
    let (pipeline, units, _) = silent_fleet_of(TRUCKS);
    (pipeline, units)
}

fn silent_fleet_of(trucks: usize) -> (Pipeline, mpsc::Receiver<Vec<Unit>>, Arc<Metrics>) {
    let atlas = Arc::new(Atlas::embedded().expect("the shipped maps load"));
    let index = Arc::new(GeofenceIndex::new(&atlas));
    let heard = Utc::now() - Duration::hours(3);
    let mut snapshot = Snapshot::default();
    for n in 0..trucks {
        let id = DeviceId::parse(&format!("parked-{n}")).expect("a valid id");
        let device = Device {
            device_id: id.clone(),
            carrier: "kg-trans".into(),
            plate: None,
            registered_at: heard - Duration::days(1),
        };
        let state = DeviceState {
            max_seq: Some(1),
            ..DeviceState::default()
        };
        let fix = Fix {
            seq: 1,
            t: heard,
            point: GeoPoint {
                lat: 42.87,
                lon: 74.59 + (n % 100) as f64 / 100.0,
            },
            speed_kmh: None,
            heading_deg: None,
            hdop: None,
            sats: None,
            alt_m: None,
        };
        let report = Report {
            device_id: id.clone(),
            received_at: heard,
            body: ReportBody::Fix(fix),
        };
        snapshot.devices.push((device, state));
        snapshot.recent_seqs.push((id.clone(), vec![1]));
        snapshot.recent_reports.push((id, vec![report]));
    }
    let rules = crate::rules::Rules::built_in().expect("the shipped rules");
    let transits = TransitStep::new(atlas.clone(), Historian::default(), rules)
        .expect("the shipped rules load");
    let (committer, units) = mpsc::channel(16);
    let metrics = Arc::new(Metrics::new());
    let pipeline = Pipeline::new(
        snapshot,
        Geo::new(index, &atlas),
        transits,
        committer,
        metrics.clone(),
        Historian::default(),
    );
    (pipeline, units, metrics)
}

/// The first unit handed to the committer: the first silence check's losses.
async fn first_unit(units: &mut mpsc::Receiver<Vec<Unit>>) -> Unit {
    let handed = units.recv().await.expect("the first silence check's unit");
    handed.into_iter().next().expect("a unit")
}

fn losses(unit: &Unit) -> usize {
    unit.writes
        .iter()
        .filter(|w| matches!(w, Write::Event(e) if e.kind == "signal_lost"))
        .count()
}

fn saved(unit: &Unit) -> Option<usize> {
    unit.writes.iter().find_map(|w| match w {
        Write::SavedTracks(saved) => Some(saved.tracks.len()),
        _ => None,
    })
}

#[tokio::test]
async fn a_clean_stop_hands_every_device_s_state_to_the_store_last() {
    let (pipeline, mut units) = silent_fleet();
    let (_inputs, inputs) = mpsc::channel(1);
    let cancel = CancellationToken::new();
    let running = tokio::spawn(pipeline.run(inputs, cancel.clone()));
    let mut raised = first_unit(&mut units).await;
    assert_eq!(losses(&raised), TRUCKS);
    // Committed: the pipeline hears of it and the losses are in the store.
    if let Some(reply) = raised.reply.take() {
        reply();
    }
    cancel.cancel();
    running.await.expect("the pipeline stops");
    let mut rest = Vec::new();
    while let Ok(handed) = units.try_recv() {
        rest.extend(handed);
    }
    let last = rest.last().expect("a unit after the losses");
    assert_eq!(
        saved(last),
        Some(TRUCKS),
        "every device's state, as the last unit"
    );
}

#[tokio::test]
async fn a_stop_that_leaves_raised_losses_uncommitted_saves_no_state() {
    let (pipeline, mut units) = silent_fleet();
    let (_inputs, inputs) = mpsc::channel(1);
    let cancel = CancellationToken::new();
    let running = tokio::spawn(pipeline.run(inputs, cancel.clone()));
    let raised = first_unit(&mut units).await;
    assert_eq!(losses(&raised), TRUCKS);
    // The stop comes before the commit: the losses are in memory, not in the store.
    cancel.cancel();
    running.await.expect("the pipeline stops");
    while let Ok(handed) = units.try_recv() {
        for unit in handed {
            assert_eq!(
                saved(&unit),
                None,
                "a state ahead of the store is not saved"
            );
        }
    }
}

/// A mass loss is raised a unit at a time, each once the one before is committed: the
/// pipeline never holds the writes of the whole fleet's losses at once.
#[tokio::test]
async fn a_mass_signal_loss_is_raised_one_unit_at_a_time() {
    let trucks = 2 * super::SILENCE_UNIT + 1;
    let (pipeline, mut units, metrics) = silent_fleet_of(trucks);
    let (_inputs, inputs) = mpsc::channel(1);
    let cancel = CancellationToken::new();
    let running = tokio::spawn(pipeline.run(inputs, cancel.clone()));
    let raised = |metrics: &Metrics| {
        let text = metrics.render();
        text.lines()
            .find(|l| l.starts_with(r#"caravan_geofence_events_total{kind="signal_lost"}"#))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(0)
    };
    let mut seen = 0;
    for expected in [super::SILENCE_UNIT, super::SILENCE_UNIT, 1] {
        let mut unit = first_unit(&mut units).await;
        assert_eq!(losses(&unit), expected);
        seen += expected;
        // Nothing beyond this unit is raised until it is committed.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert_eq!(raised(&metrics), seen);
        if let Some(reply) = unit.reply.take() {
            reply();
        }
    }
    cancel.cancel();
    running.await.expect("the pipeline stops");
}
