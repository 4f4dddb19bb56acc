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

/// A commit serialises many bodies and states through one buffer: each row must hold its own
/// JSON, exactly as `serde_json::to_string` writes it (the leaves hash that text), and the
/// state of a device written twice in one commit is the later one.
#[test]
fn each_row_holds_its_own_json_when_one_commit_writes_many() {
    use crate::device::DeviceState;
    let (dir, mut writer, reader) = store();
    let state = |seq: u64| {
        let mut state = DeviceState::default();
        if let Write::Report(report) = fix(seq) {
            state.apply(&report);
        }
        Write::DeviceState(device(), Box::new(state))
    };
    // A long body after a short one and a short state after a long one: nothing of the
    // earlier text may be left in the later row.
    let mut writes = vec![fix(1), state(1), fix(2), state(2)];
    if let Write::Report(report) = &mut writes[2] {
        if let ReportBody::Fix(fix) = &mut report.body {
            fix.heading_deg = Some(123.456_789);
            fix.alt_m = Some(-12.5);
        }
    }
    writer.commit(&writes).unwrap();

    let conn = rusqlite::Connection::open(dir.path().join("caravan.sqlite")).unwrap();
    let bodies: Vec<String> = conn
        .prepare("SELECT body FROM reports_recent ORDER BY id")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let expected: Vec<String> = [&writes[0], &writes[2]]
        .iter()
        .map(|w| match w {
            Write::Report(r) => serde_json::to_string(&r.body).unwrap(),
            _ => unreachable!("reports only"),
        })
        .collect();
    assert_eq!(bodies, expected);
    let stored: String = conn
        .query_row("SELECT state FROM device_state", [], |row| row.get(0))
        .unwrap();
    let Write::DeviceState(_, last) = &writes[3] else {
        unreachable!("a state")
    };
    assert_eq!(stored, serde_json::to_string(last).unwrap());
    let (_, read) = reader.device(&device()).unwrap().unwrap();
    assert_eq!(read.max_seq, Some(2));
    // The batch's leaves are those of the rows as stored.
    writer.fold_reports().unwrap();
    let verified = reader.verify_positions(&mut |_, _| {}).unwrap();
    assert!(verified.problems.is_empty(), "{:?}", verified.problems);
    assert_eq!(verified.reports, 2);
}

/// A state that only moved on waits for the fold of the tail; until then readers see it
/// from the stored state and the tail's reports, and a stop writes it.
#[test]
fn a_state_waiting_for_the_fold_is_read_from_the_tails_reports_and_written_at_a_stop() {
    use crate::device::DeviceState;
    let (dir, mut writer, reader) = store();
    let state_after = |seq: u64| {
        let mut state = DeviceState::default();
        for s in 1..=seq {
            if let Write::Report(report) = fix(s) {
                state.apply(&report);
            }
        }
        state
    };
    let progress = |seq| Write::DeviceProgress(device(), Box::new(state_after(seq)));
    let conn = rusqlite::Connection::open(dir.path().join("caravan.sqlite")).unwrap();
    let stored = || -> Option<String> {
        conn.query_row("SELECT state FROM device_state", [], |row| row.get(0))
            .ok()
    };
    writer.commit(&[fix(1), progress(1)]).unwrap();
    writer.commit(&[fix(2), progress(2)]).unwrap();
    assert_eq!(stored(), None, "nothing written before the fold");
    let (_, read) = reader.device(&device()).unwrap().unwrap();
    assert_eq!(read, state_after(2));
    let page = reader
        .devices(&super::DeviceFilter::default(), None, 10)
        .unwrap();
    assert_eq!(page[0].1, state_after(2));

    writer.fold_reports().unwrap();
    let json = |seq| Some(serde_json::to_string(&state_after(seq)).unwrap());
    assert_eq!(stored(), json(2), "the newest, written with the fold");
    writer.commit(&[fix(3), progress(3)]).unwrap();
    assert_eq!(stored(), json(2));
    assert_eq!(reader.device(&device()).unwrap().unwrap().1, state_after(3));
    writer.finish().unwrap();
    assert_eq!(stored(), json(3), "written at the stop");
}

#[test]
fn a_devices_window_is_planned_once_however_often_it_is_read() {
    // A start after a crash reads every device's window with these two statements; planned
    // again at every read, they cost a parse per device and per statement.
    use rusqlite::StatementStatus;

    use super::reports::{recent, recent_seqs, RECENT, RECENT_SEQS};

    let (_dir, mut writer, reader) = store();
    writer.commit(&[fix(1), fix(2), fix(3)]).unwrap();
    writer.fold_reports().unwrap();
    let replans = reader
        .with_conn(|conn| {
            for limit in [2, 3, 2, 3] {
                assert_eq!(recent(conn, &device(), limit)?.len(), limit);
                assert_eq!(recent_seqs(conn, &device(), limit as u64)?.len(), limit);
            }
            let replans = |sql: &str| {
                conn.prepare_cached(sql)
                    .map(|s| s.get_status(StatementStatus::RePrepare))
            };
            Ok((replans(&RECENT)?, replans(&RECENT_SEQS)?))
        })
        .unwrap();
    assert_eq!(replans, (0, 0), "the cached statements were planned again");
}
