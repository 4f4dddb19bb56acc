//! Bytes from the broker to validated [`Report`]s: the one place where device input is checked.

use chrono::{DateTime, Duration, Utc};
use serde_json::value::RawValue;

use super::device_id::DeviceId;
use super::reject::{Reject, RejectReason};
use super::report::{ConnState, Fix, GeoPoint, Report, ReportBody, SealEvent, Status};
use super::topic::{MessageKind, Topic};
use super::wire;

/// The edge's tolerances, from the settings.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_payload_bytes: usize,
    /// How far ahead of the server clock a device clock may run.
    pub max_future: Duration,
    /// Reports older than this are refused: the store would expire them anyway.
    pub retention: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_payload_bytes: 256 * 1024,
            max_future: Duration::minutes(5),
            retention: Duration::days(30),
        }
    }
}

/// The outcome of one MQTT message: the reports it held and the parts that were refused.
///
/// A backlog array is judged fix by fix, so one bad fix does not cost the other buffered
/// hours. `raw` of a reject is the refused array element, or `None` for the whole payload.
#[derive(Debug, Default)]
pub struct Decoded {
    pub device_id: Option<DeviceId>,
    pub reports: Vec<Report>,
    pub rejects: Vec<(Reject, Option<String>)>,
}

impl Decoded {
    fn whole(device_id: Option<DeviceId>, reject: Reject) -> Self {
        Self {
            device_id,
            reports: Vec::new(),
            rejects: vec![(reject, None)],
        }
    }
}

/// Decodes and validates one message. Never panics, whatever the bytes.
pub fn decode(topic: &str, payload: &[u8], now: DateTime<Utc>, limits: &Limits) -> Decoded {
    let topic = match Topic::parse(topic) {
        Ok(topic) => topic,
        Err(reject) => return Decoded::whole(None, reject),
    };
    let device_id = topic.device_id;
    if payload.len() > limits.max_payload_bytes {
        let detail = format!(
            "payload is {} bytes, the limit is {}",
            payload.len(),
            limits.max_payload_bytes
        );
        return Decoded::whole(Some(device_id), Reject::new(RejectReason::Oversize, detail));
    }
    let text = match std::str::from_utf8(payload) {
        Ok(text) => text,
        Err(e) => {
            let reject = Reject::new(
                RejectReason::Malformed,
                format!("payload is not UTF-8: {e}"),
            );
            return Decoded::whole(Some(device_id), reject);
        }
    };
    let edge = Edge {
        device_id: &device_id,
        now,
        limits,
    };
    let mut out = Decoded {
        device_id: None,
        ..Decoded::default()
    };
    match topic.kind {
        MessageKind::Pos if text.trim_start().starts_with('[') => edge.pos_batch(text, &mut out),
        MessageKind::Pos => out.push(edge.parse(text, |p| edge.pos(p)), None),
        MessageKind::Seal => out.push(edge.parse(text, |s| edge.seal(s)), None),
        MessageKind::Status => out.push(edge.parse(text, |s| edge.status(s)), None),
        MessageKind::Conn => out.push(edge.conn(text), None),
    }
    out.device_id = Some(device_id);
    out
}

impl Decoded {
    fn push(&mut self, result: Result<Report, Reject>, raw: Option<String>) {
        match result {
            Ok(report) => self.reports.push(report),
            Err(reject) => self.rejects.push((reject, raw)),
        }
    }
}

/// What every check needs: who sent it, the server's clock at the edge, and the limits.
struct Edge<'a> {
    device_id: &'a DeviceId,
    now: DateTime<Utc>,
    limits: &'a Limits,
}

fn malformed(e: impl std::fmt::Display) -> Reject {
    Reject::new(RejectReason::Malformed, e.to_string())
}

fn out_of_range(field: &str, value: f64) -> Reject {
    Reject::new(
        RejectReason::OutOfRange,
        format!("{field} = {value} is out of range"),
    )
}

/// Checks an optional field against an inclusive range; NaN and infinities fail too.
fn in_range(field: &str, value: Option<f64>, min: f64, max: f64) -> Result<Option<f64>, Reject> {
    match value {
        Some(v) if !(v.is_finite() && (min..=max).contains(&v)) => Err(out_of_range(field, v)),
        other => Ok(other),
    }
}

impl Edge<'_> {
    fn parse<'de, W: serde::Deserialize<'de>>(
        &self,
        text: &'de str,
        validate: impl FnOnce(W) -> Result<Report, Reject>,
    ) -> Result<Report, Reject> {
        serde_json::from_str::<W>(text)
            .map_err(malformed)
            .and_then(validate)
    }

    fn pos_batch(&self, text: &str, out: &mut Decoded) {
        let elements: Vec<&RawValue> = match serde_json::from_str(text) {
            Ok(elements) => elements,
            Err(e) => return out.push(Err(malformed(e)), None),
        };
        if elements.is_empty() {
            let reject = malformed("a backlog array must hold at least one fix");
            return out.push(Err(reject), None);
        }
        for raw in elements {
            let result = self.parse(raw.get(), |p| self.pos(p));
            let keep = result.is_err().then(|| raw.get().to_owned());
            out.push(result, keep);
        }
    }

    fn time(&self, raw: &str) -> Result<DateTime<Utc>, Reject> {
        let t = DateTime::parse_from_rfc3339(raw)
            .map_err(|e| malformed(format!("t = {raw:?} is not an RFC 3339 time: {e}")))?
            .with_timezone(&Utc);
        if t > self.now + self.limits.max_future {
            let detail = format!("t = {raw} is ahead of the server clock ({})", self.now);
            return Err(Reject::new(RejectReason::FutureTime, detail));
        }
        if t < self.now - self.limits.retention {
            let detail = format!("t = {raw} is older than the retention window");
            return Err(Reject::new(RejectReason::TooOld, detail));
        }
        Ok(t)
    }

    fn point(lat: f64, lon: f64) -> Result<GeoPoint, Reject> {
        GeoPoint::new(lat, lon).ok_or_else(|| {
            let detail = format!("lat = {lat}, lon = {lon} is not a WGS 84 position");
            Reject::new(RejectReason::OutOfRange, detail)
        })
    }

    fn report(&self, body: ReportBody) -> Report {
        Report {
            device_id: self.device_id.clone(),
            received_at: self.now,
            body,
        }
    }

    fn pos(&self, p: wire::Pos<'_>) -> Result<Report, Reject> {
        let fix = Fix {
            seq: p.seq,
            t: self.time(&p.t)?,
            point: Self::point(p.lat, p.lon)?,
            speed_kmh: in_range("speed_kmh", p.speed_kmh, 0.0, 500.0)?,
            heading_deg: in_range("heading_deg", p.heading_deg, 0.0, 360.0)?,
            hdop: in_range("hdop", p.hdop, 0.0, 100.0)?,
            sats: match p.sats {
                Some(n) if n > 128 => return Err(out_of_range("sats", f64::from(n))),
                other => other,
            },
            alt_m: in_range("alt_m", p.alt_m, -500.0, 9000.0)?,
        };
        Ok(self.report(ReportBody::Fix(fix)))
    }

    fn seal(&self, s: wire::Seal<'_>) -> Result<Report, Reject> {
        if s.seal_id.is_empty() || s.seal_id.len() > 64 {
            return Err(malformed("seal_id must be 1-64 characters"));
        }
        let point = match (s.lat, s.lon) {
            (Some(lat), Some(lon)) => Some(Self::point(lat, lon)?),
            (None, None) => None,
            _ => return Err(malformed("lat and lon come together or not at all")),
        };
        let event = SealEvent {
            seq: s.seq,
            t: self.time(&s.t)?,
            seal_id: s.seal_id.into_owned(),
            event: s.event,
            battery_pct: in_range("battery_pct", s.battery_pct, 0.0, 100.0)?,
            point,
        };
        Ok(self.report(ReportBody::Seal(event)))
    }

    fn status(&self, s: wire::Status<'_>) -> Result<Report, Reject> {
        let status = Status {
            seq: s.seq,
            t: self.time(&s.t)?,
            battery_pct: in_range("battery_pct", s.battery_pct, 0.0, 100.0)?,
            ext_power_v: in_range("ext_power_v", s.ext_power_v, 0.0, 100.0)?,
            gsm_rssi: in_range("gsm_rssi", s.gsm_rssi, -150.0, 0.0)?,
            jamming: s.jamming,
        };
        Ok(self.report(ReportBody::Status(status)))
    }

    /// `conn` is the broker's last will: the plain text `online` or `offline` (a JSON string
    /// is accepted too, since some clients quote it).
    fn conn(&self, text: &str) -> Result<Report, Reject> {
        let state = match text.trim().trim_matches('"') {
            "online" => ConnState::Online,
            "offline" => ConnState::Offline,
            other => {
                let shown: String = other.chars().take(40).collect();
                return Err(malformed(format!(
                    "conn must be online or offline, not {shown:?}"
                )));
            }
        };
        Ok(self.report(ReportBody::Conn { state }))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::telemetry::ReportBody;

    const TOPIC: &str = "caravan/v1/dev/356307042441013/pos";

    fn now() -> DateTime<Utc> {
        "2026-11-27T08:20:00Z".parse().unwrap()
    }

    fn decode_pos(payload: &str) -> Decoded {
        decode(TOPIC, payload.as_bytes(), now(), &Limits::default())
    }

    #[test]
    fn a_fix_keeps_every_field_the_device_sent() {
        let decoded = decode_pos(
            r#"{"seq":1842,"t":"2026-11-27T08:15:30Z","lat":39.681,"lon":73.9215,"speed_kmh":54.2,"heading_deg":112,"hdop":0.9,"sats":11,"alt_m":2850}"#,
        );
        let [report] = decoded.reports.as_slice() else {
            panic!("{decoded:?}")
        };
        let ReportBody::Fix(fix) = &report.body else {
            panic!("not a fix")
        };
        assert_eq!(fix.seq, 1842);
        assert_eq!(fix.t.to_rfc3339(), "2026-11-27T08:15:30+00:00");
        assert_eq!((fix.point.lat, fix.point.lon), (39.681, 73.9215));
        assert_eq!(fix.speed_kmh, Some(54.2));
        assert_eq!(fix.sats, Some(11));
        assert_eq!(report.received_at, now());
    }

    #[test]
    fn a_time_with_an_offset_is_converted_to_utc() {
        let decoded =
            decode_pos(r#"{"seq":1,"t":"2026-11-27T14:15:30+06:00","lat":42.87,"lon":74.59}"#);
        assert_eq!(
            decoded.reports[0].occurred_at().to_rfc3339(),
            "2026-11-27T08:15:30+00:00"
        );
    }

    #[test]
    fn a_fix_just_inside_the_clock_skew_is_accepted_and_just_outside_refused() {
        let inside = decode_pos(r#"{"seq":1,"t":"2026-11-27T08:25:00Z","lat":1,"lon":1}"#);
        assert_eq!(inside.reports.len(), 1);
        let outside = decode_pos(r#"{"seq":1,"t":"2026-11-27T08:25:01Z","lat":1,"lon":1}"#);
        assert_eq!(outside.rejects[0].0.reason, RejectReason::FutureTime);
    }

    #[test]
    fn a_huge_number_is_refused_not_turned_into_infinity() {
        let decoded = decode_pos(r#"{"seq":1,"t":"2026-11-27T08:15:30Z","lat":1e400,"lon":1}"#);
        assert!(decoded.reports.is_empty());
        assert_eq!(decoded.rejects.len(), 1);
    }

    #[test]
    fn a_seal_position_needs_both_coordinates() {
        let decoded = decode(
            "caravan/v1/dev/s1/seal",
            br#"{"seq":1,"t":"2026-11-27T08:15:30Z","seal_id":"S","event":"opened","lat":39.0}"#,
            now(),
            &Limits::default(),
        );
        assert_eq!(decoded.rejects[0].0.reason, RejectReason::Malformed);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn arbitrary_bytes_never_panic_and_are_accounted_for(
            payload in proptest::collection::vec(any::<u8>(), 0..512),
            kind in prop::sample::select(vec!["pos", "seal", "status", "conn", "x"]),
        ) {
            let topic = format!("caravan/v1/dev/d1/{kind}");
            let decoded = decode(&topic, &payload, now(), &Limits::default());
            // Every message ends as reports or rejects: nothing silently disappears.
            prop_assert!(!decoded.reports.is_empty() || !decoded.rejects.is_empty());
        }

        #[test]
        fn arbitrary_json_fixes_are_accepted_exactly_when_in_range(
            seq in any::<u64>(),
            lat in prop::num::f64::ANY,
            lon in -200.0f64..200.0,
            speed in prop::option::of(-10.0f64..600.0),
            minutes in -100_000i64..100,
        ) {
            let t = (now() + chrono::Duration::minutes(minutes)).to_rfc3339();
            let mut fix = serde_json::json!({"seq": seq, "t": t, "lat": lat, "lon": lon});
            if let Some(speed) = speed {
                fix["speed_kmh"] = speed.into();
            }
            let decoded = decode_pos(&fix.to_string());
            let in_range = lat.is_finite() && lat.abs() <= 90.0 && lon.abs() <= 180.0
                && speed.is_none_or(|s| (0.0..=500.0).contains(&s))
                && (-30 * 24 * 60..=5).contains(&minutes);
            prop_assert_eq!(decoded.reports.len() == 1, in_range, "{:?}", decoded.rejects);
        }

        #[test]
        fn a_backlog_yields_one_outcome_per_fix(n in 1usize..40, bad_every in 2usize..7) {
            let fixes: Vec<_> = (0..n).map(|i| {
                let lat = if i % bad_every == 0 { 99.0 } else { 39.0 };
                serde_json::json!({"seq": i, "t": "2026-11-27T08:00:00Z", "lat": lat, "lon": 73.0})
            }).collect();
            let decoded = decode_pos(&serde_json::Value::from(fixes).to_string());
            prop_assert_eq!(decoded.reports.len() + decoded.rejects.len(), n);
            prop_assert_eq!(decoded.rejects.len(), n.div_ceil(bad_every));
        }
    }
}
