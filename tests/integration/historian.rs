//! The historian against a real server speaking the InfluxDB v2 write API.
//!
//! InfluxDB 2 cannot be installed from this environment's registries, so the tests start
//! VictoriaMetrics (Debian package `victoria-metrics`), which accepts `/api/v2/write` and lets
//! us read raw samples back through `/api/v1/export`. It maps `measurement field=value` to
//! the metric `measurement_field`, keeps millisecond timestamps and, without
//! `-dedup.minScrapeInterval`, keeps duplicate samples, so a line sent twice is visible.
//!
//! Binary: `$CARAVAN_TEST_VICTORIA_BIN`, else `/usr/bin/victoria-metrics`. When it is missing
//! the tests fail under `CI=true` and are skipped with a message otherwise.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use caravan::historian::{
    self, AlertRecord, BcpCrossingRecord, BcpEvent, Historian, HistorianSettings, ReportContext,
};
use caravan::telemetry::{
    DeviceId, Fix, GeoPoint, Report, ReportBody, SealEvent, SealEventKind, Status,
};
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use tokio_util::sync::CancellationToken;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A VictoriaMetrics process on a loopback port, stopped when dropped.
struct Victoria {
    child: Option<Child>,
    binary: PathBuf,
    port: u16,
    storage: PathBuf,
}

impl Victoria {
    /// The binary, or `None` (after saying why) when the tests should be skipped.
    fn binary() -> Option<PathBuf> {
        let path = std::env::var_os("CARAVAN_TEST_VICTORIA_BIN")
            .map_or_else(|| PathBuf::from("/usr/bin/victoria-metrics"), PathBuf::from);
        if path.is_file() {
            return Some(path);
        }
        let why = format!(
            "VictoriaMetrics not found at {} (apt-get install victoria-metrics)",
            path.display()
        );
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
        eprintln!("skipped: {why}");
        None
    }

    async fn start(
        binary: &Path,
        port: u16,
        storage: &Path,
    ) -> Result<Self, Box<dyn std::error::Error>> {
        let child = Command::new(binary)
            .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
            .arg(format!("-storageDataPath={}", storage.display()))
            .arg("-loggerLevel=ERROR")
            .stdout(Stdio::null())
            .spawn()?;
        let vm = Self {
            child: Some(child),
            binary: binary.to_owned(),
            port,
            storage: storage.to_owned(),
        };
        for _ in 0..100 {
            if let Ok(resp) = reqwest::get(vm.url("/health")).await {
                if resp.status().is_success() {
                    return Ok(vm);
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err("VictoriaMetrics did not become ready within 5 s".into())
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Graceful stop (SIGTERM), so the samples it acknowledged are on disk for the restart.
    fn stop(&mut self) -> Result<(), Box<dyn std::error::Error>> {
        if let Some(mut child) = self.child.take() {
            Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status()?;
            child.wait()?;
        }
        Ok(())
    }

    async fn restart(&mut self) -> Result<(), Box<dyn std::error::Error>> {
        self.stop()?;
        *self = Self::start(&self.binary.clone(), self.port, &self.storage.clone()).await?;
        Ok(())
    }

    /// Raw samples of every series matching `selector`, by metric name and labels.
    async fn export(&self, selector: &str) -> Result<Vec<Series>, Box<dyn std::error::Error>> {
        reqwest::get(self.url("/internal/force_flush")).await?;
        let client = reqwest::Client::new();
        let text = client
            .post(self.url("/api/v1/export"))
            .form(&[("match[]", selector)])
            .send()
            .await?
            .text()
            .await?;
        let mut series = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            series.push(serde_json::from_str(line)?);
        }
        Ok(series)
    }
}

impl Drop for Victoria {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[derive(Debug, serde::Deserialize)]
struct Series {
    metric: BTreeMap<String, String>,
    values: Vec<f64>,
    timestamps: Vec<i64>,
}

fn free_port() -> Result<u16, std::io::Error> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn settings(port: u16) -> HistorianSettings {
    HistorianSettings {
        url: Some(format!("http://127.0.0.1:{port}")),
        batch_lines: 50,
        flush_interval_ms: 100,
        retry_min_ms: 50,
        retry_max_ms: 400,
        request_timeout_ms: 2000,
        ..HistorianSettings::default()
    }
}

fn start(
    settings: &HistorianSettings,
    data_dir: &Path,
) -> Result<(Historian, CancellationToken, tokio::task::JoinHandle<()>), historian::HistorianError>
{
    let cancel = CancellationToken::new();
    let (historian, driver) = historian::spawn(settings, data_dir, cancel.clone())?;
    Ok((historian, cancel, tokio::spawn(driver)))
}

async fn eventually(what: &str, cond: impl Fn() -> bool) -> TestResult {
    for _ in 0..750 {
        if cond() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(format!("timed out after 15 s waiting until {what}").into())
}

/// A recent time with a millisecond part, inside VictoriaMetrics' retention.
fn base_time() -> Result<DateTime<Utc>, Box<dyn std::error::Error>> {
    let minute = Utc::now().duration_trunc(TimeDelta::minutes(1))?;
    Ok(minute - TimeDelta::minutes(30) + TimeDelta::milliseconds(123))
}

fn fix(device: &DeviceId, seq: u64, t: DateTime<Utc>) -> Report {
    let point = GeoPoint {
        lat: 39.681,
        lon: 73.9215,
    };
    let fix = Fix {
        seq,
        t,
        point,
        speed_kmh: Some(54.2),
        heading_deg: None,
        hdop: None,
        sats: Some(11),
        alt_m: None,
    };
    Report {
        device_id: device.clone(),
        received_at: t,
        body: ReportBody::Fix(fix),
    }
}

/// Every `position_seq` sample of `device`, sorted.
async fn seqs_of(vm: &Victoria, device: &DeviceId) -> Result<Vec<u64>, Box<dyn std::error::Error>> {
    let selector = format!("position_seq{{device=\"{device}\"}}");
    let mut seqs: Vec<u64> = vm
        .export(&selector)
        .await?
        .iter()
        .flat_map(|s| s.values.iter().map(|v| *v as u64))
        .collect();
    seqs.sort_unstable();
    Ok(seqs)
}

/// Polls the export until `expected` samples are visible (or a few seconds passed).
async fn settled_seqs(
    vm: &Victoria,
    device: &DeviceId,
    expected: usize,
) -> Result<Vec<u64>, Box<dyn std::error::Error>> {
    let mut seqs = Vec::new();
    for _ in 0..50 {
        seqs = seqs_of(vm, device).await?;
        if seqs.len() >= expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(seqs)
}

#[tokio::test]
async fn every_measurement_reads_back_with_exact_values_labels_and_millisecond_timestamps(
) -> TestResult {
    let Some(binary) = Victoria::binary() else {
        return Ok(());
    };
    let storage = tempfile::tempdir()?;
    let vm = Victoria::start(&binary, free_port()?, storage.path()).await?;
    let data = tempfile::tempdir()?;
    let (historian, _cancel, _task) = start(&settings(vm.port), data.path())?;
    let device = DeviceId::parse("356307042441013")?;
    let t = base_time()?;
    let t_ms = t.timestamp_millis();
    let transit = "KG 2026/001,A=B";
    let ctx = ReportContext {
        transit_id: Some(transit),
        country: Some("KG"),
        corridor: Some("CAREC-2"),
    };
    historian.record_report(&fix(&device, 1842, t), &ctx);
    let seal = SealEvent {
        seq: 1843,
        t,
        seal_id: "KG-ES-1".into(),
        event: SealEventKind::RopeCut,
        battery_pct: Some(71.0),
        point: None,
    };
    historian.record_report(
        &Report {
            device_id: device.clone(),
            received_at: t,
            body: ReportBody::Seal(seal),
        },
        &ctx,
    );
    let status = Status {
        seq: 1844,
        t,
        battery_pct: None,
        ext_power_v: Some(27.9),
        gsm_rssi: Some(-91.0),
        jamming: Some(false),
    };
    historian.record_report(
        &Report {
            device_id: device.clone(),
            received_at: t,
            body: ReportBody::Status(status),
        },
        &ctx,
    );
    historian.record_alert(&AlertRecord {
        t,
        kind: "seal_breach".into(),
        severity: "critical".into(),
        device_id: device.clone(),
        transit_id: Some(transit.into()),
        country: Some("KG".into()),
        code: Some("01".into()),
        detail: Some("rope cut, \"Sary-Tash\"".into()),
    });
    historian.record_bcp_crossing(&BcpCrossingRecord {
        t,
        device_id: device.clone(),
        transit_id: Some(transit.into()),
        bcp_id: "irkeshtam".into(),
        post_id: "irkeshtam-kg".into(),
        country: "KG".into(),
        event: BcpEvent::Exit,
        dwell_s: Some(5400.5),
    });
    eventually("5 lines are written", || {
        historian.stats().written_lines == 5
    })
    .await?;

    let mut samples = BTreeMap::new();
    for _ in 0..50 {
        let series = vm
            .export(r#"{__name__=~"(position|seal|device_status|alert|bcp_crossing)_.*"}"#)
            .await?;
        samples = series
            .into_iter()
            .map(|s| (s.metric["__name__"].clone(), s))
            .collect();
        if samples.len() >= 14 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let value = |name: &str| {
        samples
            .get(name)
            .map(|s| (s.values.clone(), s.timestamps.clone()))
    };
    for (name, v) in [
        ("position_lat", 39.681),
        ("position_lon", 73.9215),
        ("position_speed_kmh", 54.2),
        ("position_sats", 11.0),
        ("position_seq", 1842.0),
        ("position_delay_s", 0.0),
        ("seal_breach", 1.0),
        ("seal_battery_pct", 71.0),
        ("device_status_ext_power_v", 27.9),
        ("device_status_gsm_rssi", -91.0),
        ("device_status_jamming", 0.0),
        ("alert_count", 1.0),
        ("bcp_crossing_count", 1.0),
        ("bcp_crossing_dwell_s", 5400.5),
    ] {
        assert_eq!(value(name), Some((vec![v], vec![t_ms])), "{name}");
    }
    // Labels as `name=value` joined by `|`, which no value here contains.
    let labels = |name: &str| {
        let metric = samples
            .get(name)
            .map(|s| s.metric.clone())
            .unwrap_or_default();
        metric
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("|")
    };
    let tail = format!("device={device}|transit={transit}");
    assert_eq!(
        labels("position_lat"),
        format!("__name__=position_lat|corridor=CAREC-2|country=KG|{tail}")
    );
    assert_eq!(
        labels("seal_breach"),
        format!("__name__=seal_breach|country=KG|device={device}|event=rope_cut|transit={transit}")
    );
    assert_eq!(
        labels("alert_count"),
        format!("__name__=alert_count|code=01|country=KG|device={device}|kind=seal_breach|severity=critical|transit={transit}")
    );
    assert_eq!(
        labels("bcp_crossing_dwell_s"),
        format!("__name__=bcp_crossing_dwell_s|bcp=irkeshtam|country=KG|device={device}|event=exit|post=irkeshtam-kg|transit={transit}")
    );
    Ok(())
}

#[tokio::test]
async fn fixes_recorded_while_the_server_is_down_arrive_exactly_once_when_it_returns() -> TestResult
{
    let Some(binary) = Victoria::binary() else {
        return Ok(());
    };
    let storage = tempfile::tempdir()?;
    let mut vm = Victoria::start(&binary, free_port()?, storage.path()).await?;
    let data = tempfile::tempdir()?;
    let (historian, _cancel, _task) = start(&settings(vm.port), data.path())?;
    let device = DeviceId::parse("outage-1")?;
    let t0 = base_time()?;
    let at = |seq: u64| t0 + TimeDelta::seconds(seq as i64);
    (0..20).for_each(|seq| {
        historian.record_report(&fix(&device, seq, at(seq)), &ReportContext::default())
    });
    eventually("the first 20 are written", || {
        historian.stats().written_lines == 20
    })
    .await?;

    vm.stop()?;
    let n = 500;
    (20..20 + n).for_each(|seq| {
        historian.record_report(&fix(&device, seq, at(seq)), &ReportContext::default())
    });
    eventually("writes fail and batches are spilled", || {
        let s = historian.stats();
        !s.up && s.spilled_lines >= 400
    })
    .await?;

    vm.restart().await?;
    eventually("the backlog is written", || {
        let s = historian.stats();
        s.written_lines == 20 + n && s.pending_lines() == 0
    })
    .await?;
    let stats = historian.stats();
    assert_eq!(
        (
            stats.dropped_lines,
            stats.rejected_lines,
            stats.spilled_segments
        ),
        (0, 0, 0)
    );
    assert_eq!(
        settled_seqs(&vm, &device, (20 + n) as usize).await?,
        (0..20 + n).collect::<Vec<_>>()
    );
    Ok(())
}

#[tokio::test]
async fn lines_spilled_at_shutdown_are_replayed_by_the_next_start_with_gzip() -> TestResult {
    let Some(binary) = Victoria::binary() else {
        return Ok(());
    };
    let port = free_port()?;
    let data = tempfile::tempdir()?;
    let device = DeviceId::parse("restart-1")?;
    let t0 = base_time()?;
    let n = 200;
    {
        // Nothing listens on the port yet: every write fails.
        let (historian, cancel, task) = start(&settings(port), data.path())?;
        (0..n).for_each(|seq| {
            historian.record_report(
                &fix(&device, seq, t0 + TimeDelta::seconds(seq as i64)),
                &ReportContext::default(),
            )
        });
        cancel.cancel();
        task.await?;
        let stats = historian.stats();
        assert_eq!(
            (
                stats.spilled_lines,
                stats.written_lines,
                stats.dropped_lines
            ),
            (n, 0, 0)
        );
    }
    let storage = tempfile::tempdir()?;
    let vm = Victoria::start(&binary, port, storage.path()).await?;
    let (historian, _cancel, _task) = start(
        &HistorianSettings {
            gzip: true,
            ..settings(port)
        },
        data.path(),
    )?;
    eventually("the spilled lines are written", || {
        historian.stats().written_lines == n
    })
    .await?;
    assert_eq!(
        settled_seqs(&vm, &device, n as usize).await?,
        (0..n).collect::<Vec<_>>()
    );
    assert_eq!(
        std::fs::read_dir(data.path().join(historian::SPILL_DIR))?.count(),
        0
    );
    Ok(())
}

/// Caravan itself feeds the historian: a fix published over MQTT arrives in the time-series
/// store with its exact coordinates and country, and a seal cut as a seal event.
#[tokio::test]
async fn caravan_serve_writes_what_devices_report_to_the_historian() -> TestResult {
    let Some(binary) = Victoria::binary() else {
        return Ok(());
    };
    let storage = tempfile::tempdir()?;
    let port = free_port()?;
    let vm = Victoria::start(&binary, port, storage.path()).await?;
    let dir = tempfile::tempdir()?;
    let app = crate::helpers::spawn_app_in(dir.path(), |s| s.historian = settings(port)).await;
    app.register("hist-1").await;
    let device = app.mqtt("hist-1").await;
    let t = base_time()?;
    let stamp = t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let fix =
        serde_json::json!({"seq": 7, "t": stamp, "lat": 42.87, "lon": 74.59, "speed_kmh": 30.5});
    device
        .publish_json(&crate::helpers::topic("hist-1", "pos"), &fix)
        .await;
    let cut = serde_json::json!({"seq": 8, "t": stamp, "seal_id": "S-7", "event": "rope_cut"});
    device
        .publish_json(&crate::helpers::topic("hist-1", "seal"), &cut)
        .await;

    let mut found = None;
    for _ in 0..100 {
        let lat = vm
            .export(r#"{__name__="position_lat",device="hist-1"}"#)
            .await?;
        let seal = vm
            .export(r#"{__name__=~"seal_.*",device="hist-1"}"#)
            .await?;
        if !lat.is_empty() && !seal.is_empty() {
            found = Some((lat, seal));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (lat, seal) = found.ok_or("the historian never received the fix and the seal event")?;
    assert_eq!(lat[0].values, [42.87]);
    assert_eq!(lat[0].timestamps, [t.timestamp_millis()]);
    assert_eq!(lat[0].metric.get("country").map(String::as_str), Some("KG"));
    assert_eq!(
        seal[0].metric.get("event").map(String::as_str),
        Some("rope_cut")
    );
    let (_, health) = app.get("/healthz").await;
    assert_eq!(health["historian"], "ok");
    app.shutdown().await;
    drop(vm);
    Ok(())
}
