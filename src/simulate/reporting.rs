//! When a tracker records a fix: the Teltonika FMB defaults, or a fixed interval.

use super::route::haversine_m;

/// Below this speed a tracker counts the vehicle as stopped.
const MOVING_KMH: f64 = 5.0;

/// How a simulated tracker decides to record a fix.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Reporting {
    /// Teltonika FMB defaults: while moving, a record every 300 s, or after 100 m, or after a
    /// 10° heading change, or a 10 km/h speed change; while stopped, every 3600 s.
    Teltonika,
    /// One record every this many seconds, moving or not (older trackers, e-seals).
    Interval(u32),
}

/// The tracker's state at one instant, as it would record it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    pub t: i64,
    pub lat: f64,
    pub lon: f64,
    pub speed_kmh: f64,
    pub heading_deg: f64,
}

/// Remembers the last record and applies the rules of [`Reporting`].
#[derive(Clone, Debug)]
pub struct Recorder {
    mode: Reporting,
    last: Option<Sample>,
}

fn heading_change(a: f64, b: f64) -> f64 {
    let d = (a - b).rem_euclid(360.0);
    d.min(360.0 - d)
}

impl Recorder {
    pub fn new(mode: Reporting) -> Self {
        Self { mode, last: None }
    }

    /// The time of the last record, if any.
    pub fn last_t(&self) -> Option<i64> {
        self.last.map(|s| s.t)
    }

    /// True when `now` should be recorded; it then becomes the last record.
    pub fn should_record(&mut self, now: &Sample) -> bool {
        let due = match (self.last, self.mode) {
            (None, _) => true,
            (Some(last), Reporting::Interval(s)) => now.t - last.t >= i64::from(s.max(1)),
            (Some(last), Reporting::Teltonika) => Self::teltonika_due(&last, now),
        };
        if due {
            self.last = Some(*now);
        }
        due
    }

    fn teltonika_due(last: &Sample, now: &Sample) -> bool {
        let elapsed = now.t - last.t;
        if now.speed_kmh < MOVING_KMH {
            // A vehicle that has just stopped records the stop once, then waits an hour.
            return elapsed >= 3600 || last.speed_kmh >= MOVING_KMH;
        }
        elapsed >= 300
            || haversine_m((last.lat, last.lon), (now.lat, now.lon)) >= 100.0
            || heading_change(last.heading_deg, now.heading_deg) >= 10.0
            || (now.speed_kmh - last.speed_kmh).abs() >= 10.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t: i64, lat: f64, speed_kmh: f64, heading_deg: f64) -> Sample {
        Sample {
            t,
            lat,
            lon: 74.0,
            speed_kmh,
            heading_deg,
        }
    }

    #[test]
    fn a_moving_teltonika_tracker_records_every_hundred_metres() {
        let mut r = Recorder::new(Reporting::Teltonika);
        assert!(r.should_record(&sample(0, 42.0, 40.0, 90.0)));
        // 0.0008° of latitude is about 89 m: not yet.
        assert!(!r.should_record(&sample(8, 42.0008, 40.0, 90.0)));
        assert!(r.should_record(&sample(9, 42.0010, 40.0, 90.0)));
    }

    #[test]
    fn a_turn_or_a_speed_change_is_recorded_at_once() {
        let mut r = Recorder::new(Reporting::Teltonika);
        r.should_record(&sample(0, 42.0, 40.0, 355.0));
        assert!(!r.should_record(&sample(1, 42.0, 40.0, 3.0)));
        assert!(r.should_record(&sample(2, 42.0, 40.0, 6.0)));
        assert!(r.should_record(&sample(3, 42.0, 51.0, 6.0)));
    }

    #[test]
    fn a_stopped_tracker_records_the_stop_then_hourly() {
        let mut r = Recorder::new(Reporting::Teltonika);
        r.should_record(&sample(0, 42.0, 40.0, 90.0));
        assert!(r.should_record(&sample(5, 42.0, 0.0, 90.0)));
        assert!(!r.should_record(&sample(3604, 42.0, 0.0, 90.0)));
        assert!(r.should_record(&sample(3605, 42.0, 0.0, 90.0)));
    }

    #[test]
    fn a_fixed_interval_ignores_motion() {
        let mut r = Recorder::new(Reporting::Interval(30));
        assert!(r.should_record(&sample(0, 42.0, 0.0, 0.0)));
        assert!(!r.should_record(&sample(29, 43.0, 90.0, 180.0)));
        assert!(r.should_record(&sample(30, 42.0, 0.0, 0.0)));
    }
}
