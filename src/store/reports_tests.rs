//! Reports stay readable, and are stored once, across the fold from the tail into the
//! indexed table.

use chrono::{DateTime, TimeZone, Utc};

use super::{open, SqliteReader, SqliteWriter, StoreReader, StoreWriter, Write};
use crate::device::Device;
use crate::telemetry::{DeviceId, Fix, GeoPoint, Report, ReportBody};

fn device() -> DeviceId {
    DeviceId::parse("KG-TRK-0001").unwrap()
}

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_795_767_330 + seconds, 0).unwrap()
}

fn fix(seq: u64) -> Write {
    Write::Report(Report {
        device_id: device(),
        received_at: at(seq as i64 + 5),
        body: ReportBody::Fix(Fix {
            seq,
            t: at(seq as i64 * 30),
            point: GeoPoint {
                lat: 39.681,
                lon: 73.9215 + seq as f64 * 0.001,
            },
            speed_kmh: Some(42.0),
            heading_deg: None,
            hdop: None,
            sats: None,
            alt_m: None,
        }),
    })
}

fn registered() -> Write {
    Write::Device(Device {
        device_id: device(),
        carrier: "carrier-1".into(),
        plate: None,
        registered_at: at(0),
    })
}

fn store() -> (tempfile::TempDir, SqliteWriter, SqliteReader) {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, reader) = open(dir.path()).unwrap();
    writer.commit(&[registered()]).unwrap();
    (dir, writer, reader)
}

fn track_seqs(reader: &SqliteReader) -> Vec<u64> {
    reader
        .track(&device(), at(-1), at(10_000), 100)
        .unwrap()
        .iter()
        .map(|f| f.seq)
        .collect()
}

#[test]
fn a_committed_report_is_readable_before_and_after_the_fold() {
    let (_dir, mut writer, reader) = store();
    writer.commit(&[fix(1), fix(2)]).unwrap();
    assert_eq!(track_seqs(&reader), [1, 2], "read from the tail");
    assert_eq!(writer.fold_reports().unwrap(), 0);
    writer.commit(&[fix(3)]).unwrap();
    assert_eq!(track_seqs(&reader), [1, 2, 3], "read from both tables");
    let recent = reader.recent_reports(&device(), 2).unwrap();
    let seqs: Vec<_> = recent.iter().filter_map(Report::seq).collect();
    assert_eq!(seqs, [2, 3], "the newest two, oldest first");
}

#[test]
fn a_report_delivered_again_is_stored_once_and_counted_as_a_duplicate() {
    let (_dir, mut writer, reader) = store();
    writer.commit(&[fix(1), fix(2)]).unwrap();
    writer.fold_reports().unwrap();
    writer.commit(&[fix(2)]).unwrap();
    assert_eq!(
        track_seqs(&reader),
        [1, 2],
        "shown once while in both tables"
    );
    assert_eq!(writer.fold_reports().unwrap(), 1);
    assert_eq!(track_seqs(&reader), [1, 2]);
}

#[test]
fn a_restart_folds_what_the_tail_held_and_sees_its_seq_window() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut writer, _) = open(dir.path()).unwrap();
        let state = crate::device::DeviceState {
            max_seq: Some(3),
            ..Default::default()
        };
        let state = Write::DeviceState(device(), Box::new(state));
        writer
            .commit(&[registered(), fix(1), fix(2), fix(3), state])
            .unwrap();
    }
    let (_writer, reader) = open(dir.path()).unwrap();
    let snapshot = reader.snapshot(1024, 32, "engine").unwrap();
    assert_eq!(snapshot.recent_seqs, [(device(), vec![1, 2, 3])]);
    let recent = &snapshot.recent_reports[0].1;
    assert_eq!(recent.len(), 3);
}
