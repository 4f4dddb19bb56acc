//! The writer against a scripted stand-in for InfluxDB's write endpoint (warp on port 0).
//! The real-server tests are in `tests/integration/historian.rs`.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chrono::{TimeZone, Utc};
use warp::http::StatusCode;
use warp::Filter;

use super::*;
use crate::telemetry::{DeviceId, Fix, GeoPoint, ReportBody};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// What the stand-in received: query string, `Content-Encoding`, body and the status it gave.
#[derive(Clone, Debug)]
struct Received {
    query: String,
    encoding: Option<String>,
    body: Bytes,
    status: u16,
}

#[derive(Clone, Default)]
struct FakeInflux {
    /// Statuses to answer with, in order; 204 once the script is used up.
    script: Arc<Mutex<VecDeque<u16>>>,
    received: Arc<Mutex<Vec<Received>>>,
    /// Hold the first request for 2 s, like a server that stopped answering.
    stall_first: Arc<AtomicBool>,
}

/// Marks a request answered only after the client may have given up on it.
const STALLED: u16 = 599;

impl FakeInflux {
    async fn start(&self) -> Result<String, std::io::Error> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let this = self.clone();
        let route = warp::post()
            .and(warp::path!("api" / "v2" / "write"))
            .and(warp::query::raw())
            .and(warp::header::optional::<String>("content-encoding"))
            .and(warp::body::bytes())
            .and_then(move |query, encoding, body| {
                let this = this.clone();
                async move {
                    let stalled = this.stall_first.swap(false, SeqCst);
                    if stalled {
                        tokio::time::sleep(Duration::from_secs(2)).await;
                    }
                    let scripted = this.script.lock().ok().and_then(|mut s| s.pop_front());
                    let status = scripted.unwrap_or(204);
                    if let Ok(mut received) = this.received.lock() {
                        let marked = if stalled { STALLED } else { status };
                        received.push(Received {
                            query,
                            encoding,
                            body,
                            status: marked,
                        });
                    }
                    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
                    Ok::<_, warp::Rejection>(warp::reply::with_status("", status))
                }
            });
        tokio::spawn(warp::serve(route).incoming(listener).run());
        Ok(url)
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Sequence numbers of the fixes in accepted requests, in the order they arrived.
    fn accepted_seqs(&self) -> Vec<u64> {
        self.received()
            .iter()
            .filter(|r| r.status == 204)
            .flat_map(|r| seqs(&r.body))
            .collect()
    }
}

fn seqs(body: &[u8]) -> Vec<u64> {
    let text = String::from_utf8_lossy(body);
    text.lines()
        .filter_map(|l| l.split("seq=").nth(1)?.split('i').next()?.parse().ok())
        .collect()
}

fn fix(seq: u64) -> Report {
    let t = Utc
        .timestamp_opt(1_795_767_330 + seq as i64, 0)
        .single()
        .unwrap_or_default();
    Report {
        device_id: DeviceId::parse("dev-1").unwrap_or_else(|_| unreachable!()),
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
    }
}

fn settings(url: &str) -> HistorianSettings {
    HistorianSettings {
        url: Some(url.to_owned()),
        batch_lines: 10,
        queue_lines: 1000,
        flush_interval_ms: 50,
        retry_min_ms: 20,
        retry_max_ms: 100,
        request_timeout_ms: 2000,
        shutdown_flush_ms: 500,
        ..HistorianSettings::default()
    }
}

/// Spawns the historian; returns the handle, the cancel token and the driver task.
fn start(
    settings: &HistorianSettings,
    data_dir: &Path,
) -> Result<(Historian, CancellationToken, tokio::task::JoinHandle<()>), HistorianError> {
    let cancel = CancellationToken::new();
    let (historian, driver) = spawn(settings, data_dir, cancel.clone())?;
    Ok((historian, cancel, tokio::spawn(driver)))
}

async fn eventually(what: &str, cond: impl Fn() -> bool) -> TestResult {
    for _ in 0..200 {
        if cond() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(format!("timed out waiting until {what}").into())
}

fn free_port_url() -> Result<String, std::io::Error> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(format!("http://{}", listener.local_addr()?))
}

#[tokio::test]
async fn lines_go_out_in_batches_of_the_configured_size_with_millisecond_precision() -> TestResult {
    let influx = FakeInflux::default();
    let url = influx.start().await?;
    let dir = tempfile::tempdir()?;
    let (historian, _cancel, _task) = start(&settings(&url), dir.path())?;
    (0..25).for_each(|seq| historian.record_report(&fix(seq), &ReportContext::default()));
    eventually("25 lines are written", || {
        historian.stats().written_lines == 25
    })
    .await?;
    let received = influx.received();
    let sizes: Vec<usize> = received.iter().map(|r| seqs(&r.body).len()).collect();
    assert_eq!(sizes, [10, 10, 5]);
    assert_eq!(influx.accepted_seqs(), (0..25).collect::<Vec<_>>());
    assert!(
        received[0].query.contains("precision=ms") && received[0].query.contains("bucket=caravan")
    );
    Ok(())
}

#[tokio::test]
async fn a_failed_request_is_retried_and_its_lines_arrive_once() -> TestResult {
    let influx = FakeInflux::default();
    influx
        .script
        .lock()
        .map_err(|_| "poisoned")?
        .extend([503, 500]);
    let url = influx.start().await?;
    let dir = tempfile::tempdir()?;
    let (historian, _cancel, _task) = start(&settings(&url), dir.path())?;
    (0..10).for_each(|seq| historian.record_report(&fix(seq), &ReportContext::default()));
    eventually("10 lines are written", || {
        historian.stats().written_lines == 10
    })
    .await?;
    let stats = historian.stats();
    assert_eq!(influx.accepted_seqs(), (0..10).collect::<Vec<_>>());
    assert_eq!(
        (stats.failed_requests, stats.spilled_segments, stats.up),
        (2, 0, true)
    );
    assert!(stats.last_error.is_some_and(|e| e.contains("500")));
    Ok(())
}

#[tokio::test]
async fn a_batch_the_server_refuses_is_dropped_and_counted_and_writing_goes_on() -> TestResult {
    let influx = FakeInflux::default();
    influx.script.lock().map_err(|_| "poisoned")?.push_back(400);
    let url = influx.start().await?;
    let dir = tempfile::tempdir()?;
    let (historian, _cancel, _task) = start(&settings(&url), dir.path())?;
    (0..10).for_each(|seq| historian.record_report(&fix(seq), &ReportContext::default()));
    eventually("the batch is refused", || {
        historian.stats().rejected_lines == 10
    })
    .await?;
    (10..13).for_each(|seq| historian.record_report(&fix(seq), &ReportContext::default()));
    eventually("3 lines are written", || {
        historian.stats().written_lines == 3
    })
    .await?;
    assert_eq!(influx.accepted_seqs(), [10, 11, 12]);
    Ok(())
}

#[tokio::test]
async fn with_the_server_down_batches_are_spilled_and_replayed_in_order_after_a_restart(
) -> TestResult {
    let dir = tempfile::tempdir()?;
    let down = settings(&free_port_url()?);
    let (historian, cancel, task) = start(&down, dir.path())?;
    (0..35).for_each(|seq| historian.record_report(&fix(seq), &ReportContext::default()));
    eventually("30 lines are spilled", || {
        historian.stats().spilled_lines >= 30
    })
    .await?;
    assert!(!historian.stats().up);
    cancel.cancel();
    task.await?;
    let stats = historian.stats();
    assert_eq!(
        (stats.spilled_lines, stats.queued_lines, stats.dropped_lines),
        (35, 0, 0)
    );

    let influx = FakeInflux::default();
    let url = influx.start().await?;
    let (historian, _cancel, _task) = start(&settings(&url), dir.path())?;
    eventually("35 lines are replayed", || {
        historian.stats().written_lines == 35
    })
    .await?;
    assert_eq!(influx.accepted_seqs(), (0..35).collect::<Vec<_>>());
    assert_eq!(std::fs::read_dir(dir.path().join(SPILL_DIR))?.count(), 0);
    Ok(())
}

#[tokio::test]
async fn beyond_the_spill_budget_every_line_is_either_kept_or_counted_as_dropped() -> TestResult {
    let dir = tempfile::tempdir()?;
    let down = HistorianSettings {
        spill_budget_bytes: 3000,
        ..settings(&free_port_url()?)
    };
    let (historian, cancel, task) = start(&down, dir.path())?;
    (0..100).for_each(|seq| historian.record_report(&fix(seq), &ReportContext::default()));
    cancel.cancel();
    task.await?;
    let stats = historian.stats();
    assert!(
        stats.dropped_lines > 0 && stats.spilled_bytes <= 3000,
        "{stats:?}"
    );
    assert_eq!(stats.spilled_lines + stats.dropped_lines, 100, "{stats:?}");
    Ok(())
}

#[tokio::test]
async fn when_memory_fills_during_a_stalled_request_it_is_abandoned_and_order_kept_on_disk(
) -> TestResult {
    let influx = FakeInflux::default();
    influx.stall_first.store(true, SeqCst);
    let url = influx.start().await?;
    let dir = tempfile::tempdir()?;
    let tight = HistorianSettings {
        queue_lines: 20,
        request_timeout_ms: 10_000,
        ..settings(&url)
    };
    let (historian, _cancel, _task) = start(&tight, dir.path())?;
    (0..10).for_each(|seq| historian.record_report(&fix(seq), &ReportContext::default()));
    eventually("the first request stalls", || {
        !influx.stall_first.load(SeqCst)
    })
    .await?;
    // In chunks smaller than the intake channel (also `queue_lines`), as a pipeline would.
    for chunk in (10..35).collect::<Vec<_>>().chunks(5) {
        chunk
            .iter()
            .for_each(|&seq| historian.record_report(&fix(seq), &ReportContext::default()));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    eventually("35 lines are written", || {
        historian.stats().written_lines == 35
    })
    .await?;
    assert_eq!(influx.accepted_seqs(), (0..35).collect::<Vec<_>>());
    let stats = historian.stats();
    assert_eq!((stats.failed_requests, stats.dropped_lines), (1, 0));
    Ok(())
}

#[tokio::test]
async fn shutdown_sends_what_is_in_memory_when_the_server_is_up() -> TestResult {
    let influx = FakeInflux::default();
    let url = influx.start().await?;
    let dir = tempfile::tempdir()?;
    let slow_flush = HistorianSettings {
        flush_interval_ms: 60_000,
        ..settings(&url)
    };
    let (historian, cancel, task) = start(&slow_flush, dir.path())?;
    (0..5).for_each(|seq| historian.record_report(&fix(seq), &ReportContext::default()));
    cancel.cancel();
    task.await?;
    assert_eq!(influx.accepted_seqs(), [0, 1, 2, 3, 4]);
    assert_eq!(historian.stats().spilled_segments, 0);
    Ok(())
}

#[tokio::test]
async fn a_full_queue_drops_new_lines_and_counts_them_without_waiting() -> TestResult {
    let dir = tempfile::tempdir()?;
    let small = HistorianSettings {
        batch_lines: 5,
        queue_lines: 5,
        ..settings("http://127.0.0.1:9")
    };
    // The driver is never run, so nothing drains the queue.
    let (historian, _driver) = spawn(&small, dir.path(), CancellationToken::new())?;
    (0..8).for_each(|seq| historian.record_report(&fix(seq), &ReportContext::default()));
    let stats = historian.stats();
    assert_eq!((stats.queued_lines, stats.dropped_lines), (5, 3));
    Ok(())
}

#[tokio::test]
async fn with_gzip_the_body_is_compressed_and_labelled() -> TestResult {
    let influx = FakeInflux::default();
    let url = influx.start().await?;
    let dir = tempfile::tempdir()?;
    let (historian, _cancel, _task) = start(
        &HistorianSettings {
            gzip: true,
            ..settings(&url)
        },
        dir.path(),
    )?;
    (0..10).for_each(|seq| historian.record_report(&fix(seq), &ReportContext::default()));
    eventually("10 lines are written", || {
        historian.stats().written_lines == 10
    })
    .await?;
    let received = influx.received();
    assert_eq!(received[0].encoding.as_deref(), Some("gzip"));
    assert!(received[0].body.starts_with(&[0x1f, 0x8b]));
    Ok(())
}

#[tokio::test]
async fn without_a_url_the_historian_is_off_and_recording_does_nothing() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (historian, driver) = spawn(
        &HistorianSettings::default(),
        dir.path(),
        CancellationToken::new(),
    )?;
    historian.record_report(&fix(1), &ReportContext::default());
    driver.await;
    assert!(!historian.is_enabled());
    assert_eq!(historian.stats(), HistorianStats::default());
    assert!(!dir.path().join(SPILL_DIR).exists());
    Ok(())
}
