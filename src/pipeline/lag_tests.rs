//! A start after a crash rebuilds tracking from the reports, so a `device_state` that lags
//! them (written about once a second, the newest lost with the process) costs nothing but
//! the replay.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use geo::Centroid;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::committer::latest_states_only;
use super::track::{self, Sinks};
use super::{restore, Geo, Pipeline, SeqWindow, TransitStep};
use crate::device::{Device, DeviceState};
use crate::geofence::{DeviceGeoState, GeofenceIndex};
use crate::historian::Historian;
use crate::maps::Atlas;
use crate::metrics::Metrics;
use crate::store::{self, SqliteReader, SqliteWriter, StoreReader, StoreWriter, Write};
use crate::telemetry::{DeviceId, Fix, GeoPoint, Report, ReportBody};

/// How the run before the restart left `device_state`.
#[derive(Clone, Copy, Debug)]
enum Before {
    /// Every state written in its commit, and a clean stop: no lag.
    Current,
    /// States waiting for the next fold of the tail when the process was killed.
    Killed,
    /// No state ever written, and the reports folded out of the tail: the most a state can
    /// lag (a device first heard since its last state write).
    Missing,
}

fn truck() -> DeviceId {
    DeviceId::parse("KG-TRK-0042").expect("a valid id")
}

/// Fixes a minute apart driving east through the Osh customs office: in, and out again.
fn drive(atlas: &Atlas, from: u64, to: u64, start: DateTime<Utc>) -> Vec<Report> {
    let office = atlas
        .offices
        .iter()
        .find(|o| o.id == "osh")
        .expect("the shipped maps have the Osh office");
    let centre = office.zone.centroid().expect("a zone with an area");
    (from..=to)
        .map(|seq| {
            let t = start + Duration::minutes(seq as i64);
            Report {
                device_id: truck(),
                received_at: t,
                body: ReportBody::Fix(Fix {
                    seq,
                    t,
                    point: GeoPoint {
                        lat: centre.y(),
                        lon: centre.x() - 0.05 + seq as f64 * 0.005,
                    },
                    speed_kmh: Some(25.0),
                    heading_deg: Some(90.0),
                    hdop: None,
                    sats: None,
                    alt_m: None,
                }),
            }
        })
        .collect()
}

/// Opens the store and restores the pipeline from it, as a start does.
fn start(dir: &Path, atlas: &Arc<Atlas>) -> (SqliteWriter, SqliteReader, Pipeline) {
    // The index first: the store's writer folds its tail a second after it opens, and the
    // runs here must reach their stop before that.
    let geo = Geo::new(Arc::new(GeofenceIndex::new(atlas)), atlas);
    let (writer, reader) = store::open(dir).expect("the store opens");
    let engine = geo.engine().index().fingerprint().to_owned();
    let snapshot = reader
        .snapshot(SeqWindow::WIDTH, 32, &engine)
        .expect("the snapshot reads");
    let rules = crate::rules::Rules::built_in().expect("the shipped rules");
    let mut transits = TransitStep::new(atlas.clone(), Historian::default(), rules)
        .expect("the shipped rules load");
    let replay = |id: &DeviceId, max_seq| reader.device_window(id, max_seq, SeqWindow::WIDTH, 32);
    let never = CancellationToken::new();
    let (devices, _) = restore(snapshot, &geo, &mut transits, &never, &replay)
        .expect("the reports read")
        .expect("not cancelled");
    let (committer, _) = mpsc::channel(1);
    let metrics = Arc::new(Metrics::new());
    let pipeline = Pipeline::resume(
        devices,
        geo,
        transits,
        committer,
        metrics,
        Historian::default(),
    );
    (writer, reader, pipeline)
}

/// Tracks each report as its own message and returns the kinds of the events raised, with
/// each message's writes as the committer would commit them, one commit per message.
fn deliver(pipeline: &mut Pipeline, reports: Vec<Report>) -> (Vec<String>, Vec<Vec<Write>>) {
    let mut commits = Vec::new();
    let mut kinds = Vec::new();
    for report in reports {
        let mut writes = Vec::new();
        let now = report.received_at;
        let tracked = pipeline.devices.get_mut(&truck()).expect("registered");
        let sinks = Sinks {
            metrics: &pipeline.metrics,
            historian: &pipeline.historian,
            geo: &pipeline.geo,
            transits: &mut pipeline.transits,
        };
        track::track(tracked, &truck(), vec![report], now, sinks, &mut writes);
        kinds.extend(writes.iter().filter_map(|w| match w {
            Write::Event(e) => Some(e.kind.clone()),
            _ => None,
        }));
        if !writes.is_empty() {
            commits.push(latest_states_only(writes));
        }
    }
    (kinds, commits)
}

/// The highest seq in the truck's stored state, read from the file as it is.
fn stored_max_seq(dir: &Path) -> Option<u64> {
    let conn = rusqlite::Connection::open(dir.join("caravan.sqlite")).expect("the store opens");
    let state: Option<String> = conn
        .query_row("SELECT state FROM device_state", [], |row| row.get(0))
        .ok();
    state
        .and_then(|s| serde_json::from_str::<DeviceState>(&s).ok())
        .and_then(|s| s.max_seq)
}

/// What tracking holds for the truck after a start: its duplicate window, its state and where
/// the geofence engine has it.
#[derive(Debug, PartialEq)]
struct Tracking {
    seqs: Vec<u8>,
    state: DeviceState,
    geo: DeviceGeoState,
    stored: DeviceState,
}

/// Drives the truck, leaves the store as `before` says, starts again (replaying the reports
/// when the state is not current), and drives on; what tracking held after the start, what
/// the second drive raised, and what redelivering the first drive raised.
fn run(before: Before) -> (Tracking, Vec<String>, Vec<String>, Vec<String>) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let atlas = Arc::new(Atlas::embedded().expect("the shipped maps load"));
    // The same times in every run, in whole milliseconds as the reports store them.
    let start_at = Utc.with_ymd_and_hms(2026, 11, 27, 8, 0, 0).single();
    let start_at = start_at.expect("a valid time");
    let first = drive(&atlas, 1, 20, start_at);
    let raised_first;
    {
        let (mut writer, _reader, mut pipeline) = start(dir.path(), &atlas);
        let device = Device {
            device_id: truck(),
            carrier: "kg-trans".into(),
            plate: None,
            registered_at: start_at - Duration::days(1),
        };
        writer
            .commit(&[Write::Device(device.clone())])
            .expect("registered");
        pipeline.devices.insert(Box::new(super::saved::tracked(
            super::kept::Kept::from(&DeviceState::default()),
            SeqWindow::default(),
            crate::geofence::DeviceTrack::new(truck()),
        )));
        let (kinds, commits) = deliver(&mut pipeline, first.clone());
        raised_first = kinds;
        for mut writes in commits {
            match before {
                Before::Current => {
                    for write in &mut writes {
                        if let Write::DeviceProgress(id, state) = write {
                            *write = Write::DeviceState(id.clone(), state.clone());
                        }
                    }
                }
                Before::Killed => {}
                Before::Missing => writes
                    .retain(|w| !matches!(w, Write::DeviceState(..) | Write::DeviceProgress(..))),
            }
            writer.commit(&writes).expect("committed");
        }
        match before {
            Before::Current => writer.finish().expect("finished"),
            // Dropped without `finish`: what waited for the fold is lost with the process.
            Before::Killed => assert!(
                stored_max_seq(dir.path()) < Some(20),
                "the stored state lags the reports"
            ),
            Before::Missing => {
                writer.fold_reports().expect("folded");
                assert_eq!(stored_max_seq(dir.path()), None);
            }
        }
    }
    let (_writer, reader, mut pipeline) = start(dir.path(), &atlas);
    let tracked = pipeline.devices.get(&truck()).expect("restored");
    let (_, stored) = reader
        .device(&truck())
        .expect("readable")
        .expect("registered");
    let tracking = Tracking {
        seqs: postcard::to_stdvec(&tracked.seqs).expect("encodes"),
        state: tracked.state(),
        geo: pipeline.geo.engine().snapshot(&tracked.geo),
        // The corridor progress is the engine's; the rest of the stored state is the reports'.
        stored: DeviceState {
            geo: None,
            ..stored
        },
    };
    let (again, commits) = deliver(&mut pipeline, first[15..].to_vec());
    assert!(
        commits.is_empty(),
        "{before:?}: a redelivery writes nothing"
    );
    let (second, _) = deliver(&mut pipeline, drive(&atlas, 21, 40, start_at));
    (tracking, raised_first, again, second)
}

#[test]
fn a_start_after_a_state_that_lags_the_reports_tracks_as_after_a_current_one() {
    let (current, raised, again, second) = run(Before::Current);
    assert!(
        raised.iter().any(|k| k == "enter"),
        "the drive raises events before the restart: {raised:?}"
    );
    assert!(again.is_empty());
    assert_eq!(current.state.max_seq, Some(20));
    assert_eq!(current.stored.max_seq, Some(20));
    for before in [Before::Killed, Before::Missing] {
        let (lagging, raised_then, again, second_then) = run(before);
        assert_eq!(raised_then, raised);
        // With no state at all, the API's stored state comes back with the truck's next
        // report; a killed run's is rebuilt from the tail as the store opens.
        let lagging = match before {
            Before::Missing => Tracking {
                stored: current.stored.clone(),
                ..lagging
            },
            _ => lagging,
        };
        assert_eq!(lagging, current, "{before:?}: tracking after the start");
        assert!(again.is_empty(), "{before:?}: nothing raised twice");
        assert_eq!(second_then, second, "{before:?}: the drive after the start");
    }
}
