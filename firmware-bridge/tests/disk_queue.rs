//! The disk queue on its own: seqs survive restarts, the budget refuses, acknowledged
//! segments are deleted.

use std::path::Path;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use firmware_bridge::device::DeviceId;
use firmware_bridge::metrics::Metrics;
use firmware_bridge::queue::{self, segment::Position, Item, QueueError, QueueLimits, QueueReader};
use firmware_bridge::report::{Report, Status};

fn status() -> Report {
    Report::Status(Status {
        t: Utc.with_ymd_and_hms(2026, 11, 27, 8, 0, 0).unwrap(),
        gsm_rssi: Some(-91),
        ..Status::default()
    })
}

fn device() -> DeviceId {
    DeviceId::parse("356307042441013").unwrap()
}

/// Every message still queued, as `(seq, end position)`, acknowledging each if `ack`.
fn drain(reader: &mut QueueReader, ack: bool) -> Vec<u64> {
    let mut seqs = Vec::new();
    while let Some(item) = reader.next_item().unwrap() {
        let end: Position = match item {
            Item::Message(entry, end) => {
                seqs.push(entry.last_seq);
                end
            }
            Item::SegmentEnd(end) => end,
        };
        if ack {
            reader.acked_through(end);
        }
    }
    seqs
}

async fn session(
    dir: &Path,
    limits: QueueLimits,
    batches: usize,
    ack: bool,
) -> (Vec<u64>, Vec<Result<(), QueueError>>) {
    let (handle, mut reader, writer) =
        queue::open(dir, limits, Arc::new(Metrics::default())).unwrap();
    let mut results = Vec::new();
    for _ in 0..batches {
        results.push(handle.enqueue(&device(), vec![status()]).await);
    }
    let seqs = drain(&mut reader, ack);
    reader.save_cursor();
    drop(handle);
    tokio::task::spawn_blocking(move || writer.join().unwrap())
        .await
        .unwrap();
    (seqs, results)
}

#[tokio::test]
async fn seqs_continue_after_a_restart_and_unacknowledged_entries_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (first, _) = session(dir.path(), QueueLimits::default(), 2, false).await;
    assert_eq!(first, [1, 2]);
    let (second, _) = session(dir.path(), QueueLimits::default(), 1, false).await;
    assert_eq!(
        second,
        [1, 2, 3],
        "the unacknowledged entries come back, then the new one"
    );
}

#[tokio::test]
async fn acknowledged_segments_are_deleted_and_their_seqs_never_reused() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = QueueLimits {
        segment_bytes: 1,
        ..QueueLimits::default()
    };
    let (first, _) = session(dir.path(), tiny, 3, true).await;
    assert_eq!(first, [1, 2, 3]);
    let segments = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "seg")
        })
        .count();
    assert!(
        segments <= 2,
        "acknowledged segments are deleted, {segments} remain"
    );
    let (second, _) = session(dir.path(), tiny, 1, true).await;
    assert_eq!(second, [4]);
}

#[tokio::test]
async fn a_full_queue_refuses_new_data_instead_of_dropping_old() {
    let dir = tempfile::tempdir().unwrap();
    let small = QueueLimits {
        budget_bytes: 300,
        ..QueueLimits::default()
    };
    let (seqs, results) = session(dir.path(), small, 5, false).await;
    assert!(results.contains(&Err(QueueError::Full)), "{results:?}");
    assert_eq!(seqs.len(), results.iter().filter(|r| r.is_ok()).count());
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "refused data consumes no seq"
    );
}
