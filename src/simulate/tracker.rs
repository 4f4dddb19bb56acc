//! The device in the cab: records fixes, keeps them while out of coverage, sends seal events
//! and status, and drains its battery.

use super::message::{Outgoing, PosPayload, SealPayload, StatusPayload};
use super::reporting::{Recorder, Reporting, Sample};
use crate::telemetry::SealEventKind;

/// Most fixes in one backlog message; longer backlogs go out as several arrays.
pub const BACKLOG_CHUNK: usize = 500;
/// Status messages while in coverage, every this many seconds.
pub const STATUS_EVERY_S: i64 = 1800;
/// E-seal battery drain, percent per hour.
const DRAIN_PCT_PER_H: f64 = 0.15;
/// EAEU alert code 05: the battery is low below this.
const LOW_BATTERY_PCT: f64 = 15.0;

/// What the device knows and holds; the vehicle drives it one second at a time.
#[derive(Clone, Debug)]
pub struct Tracker {
    pub device_id: String,
    recorder: Recorder,
    seq: u64,
    /// Fixes recorded without coverage, oldest first.
    buffer: Vec<PosPayload>,
    /// Seal events recorded without coverage, oldest first.
    held: Vec<SealPayload>,
    pub battery_pct: f64,
    pub seal_id: String,
    seal_count: u32,
    next_status: i64,
    low_battery_sent: bool,
    /// Signal strength while in coverage, dBm.
    rssi: f64,
}

impl Tracker {
    pub fn new(device_id: String, mode: Reporting, seq_base: u64, battery_pct: f64) -> Self {
        let seal_id = format!("{device_id}-S1");
        Self {
            device_id,
            recorder: Recorder::new(mode),
            seq: seq_base,
            buffer: Vec::new(),
            held: Vec::new(),
            battery_pct,
            seal_id,
            seal_count: 1,
            next_status: i64::MIN,
            low_battery_sent: false,
            rssi: -85.0,
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// The last seq used.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// True once the battery has run below the low-battery threshold (and said so).
    pub fn battery_low(&self) -> bool {
        self.low_battery_sent
    }

    /// The device time of the last fix recorded, if any.
    pub fn last_fix_t(&self) -> Option<i64> {
        self.recorder.last_t()
    }

    /// Fixes waiting for coverage.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// Device time (RFC 3339) of the oldest fix or seal event waiting for coverage.
    pub fn holding_since(&self) -> Option<&str> {
        let fix = self.buffer.first().map(|f| f.t.as_str());
        let seal = self.held.first().map(|s| s.t.as_str());
        // Whole-second RFC 3339 times in UTC sort as text.
        match (fix, seal) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// One second of the device's life at `sample`. `force` records a fix whatever the rules
    /// say (a GNSS jump). Returns the seq of the fix when one was recorded.
    pub fn tick(
        &mut self,
        sample: &Sample,
        covered: bool,
        force: bool,
        out: &mut Vec<Outgoing>,
    ) -> Option<u64> {
        self.battery_pct = (self.battery_pct - DRAIN_PCT_PER_H / 3600.0).max(0.0);
        if covered {
            // Oldest first: what was kept out of coverage goes before anything new.
            self.flush(out);
        }
        if self.battery_pct < LOW_BATTERY_PCT && !self.low_battery_sent {
            self.low_battery_sent = true;
            self.seal_event(sample, SealEventKind::LowBattery, covered, out);
        }
        let recorded = if self.recorder.should_record(sample) || force {
            let seq = self.next_seq();
            let fix = PosPayload::new(
                seq,
                sample.t,
                sample.lat,
                sample.lon,
                sample.speed_kmh,
                sample.heading_deg,
            );
            if covered {
                out.push(Outgoing::pos(&self.device_id, &fix));
            } else {
                self.buffer.push(fix);
            }
            Some(seq)
        } else {
            None
        };
        if covered && sample.t >= self.next_status {
            self.next_status = sample.t + STATUS_EVERY_S;
            self.status(sample, out);
        }
        recorded
    }

    /// Sends what was kept while out of coverage: the fixes as backlog arrays, in the order
    /// they were recorded, then the seal events.
    fn flush(&mut self, out: &mut Vec<Outgoing>) {
        for chunk in self.buffer.chunks(BACKLOG_CHUNK) {
            out.push(Outgoing::backlog(&self.device_id, chunk));
        }
        self.buffer.clear();
        for seal in self.held.drain(..) {
            out.push(Outgoing::seal(&self.device_id, &seal));
        }
    }

    fn status(&mut self, sample: &Sample, out: &mut Vec<Outgoing>) {
        let seq = self.next_seq();
        // Engine running: alternator voltage; engine off: battery voltage.
        let ext_power_v = if sample.speed_kmh > 0.0 { 27.8 } else { 25.1 };
        let status = StatusPayload {
            seq,
            t: super::message::rfc3339(sample.t),
            battery_pct: (self.battery_pct * 10.0).round() / 10.0,
            ext_power_v,
            gsm_rssi: self.rssi,
            jamming: false,
        };
        out.push(Outgoing::status(&self.device_id, &status));
    }

    /// Records a seal event at `sample`'s place; it is sent now or kept until coverage.
    /// Returns its seq.
    pub fn seal_event(
        &mut self,
        sample: &Sample,
        event: SealEventKind,
        covered: bool,
        out: &mut Vec<Outgoing>,
    ) -> u64 {
        let seq = self.next_seq();
        let seal = SealPayload {
            seq,
            t: super::message::rfc3339(sample.t),
            seal_id: self.seal_id.clone(),
            event,
            battery_pct: (self.battery_pct * 10.0).round() / 10.0,
            lat: (sample.lat * 1e6).round() / 1e6,
            lon: (sample.lon * 1e6).round() / 1e6,
        };
        if covered {
            self.flush(out);
            out.push(Outgoing::seal(&self.device_id, &seal));
        } else {
            self.held.push(seal);
        }
        seq
    }

    /// A new seal for the next transit, armed at departure.
    pub fn reseal(&mut self, sample: &Sample, covered: bool, out: &mut Vec<Outgoing>) {
        self.seal_count += 1;
        self.seal_id = format!("{}-S{}", self.device_id, self.seal_count);
        self.seal_event(sample, SealEventKind::Armed, covered, out);
    }

    pub fn set_rssi(&mut self, rssi: f64) {
        self.rssi = rssi.clamp(-120.0, -50.0);
    }
}
