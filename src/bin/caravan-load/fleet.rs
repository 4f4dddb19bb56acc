//! A fleet on transits, as the region has it: every device on an open transit along one of
//! the shipped office-to-office corridors, trucks spread over those corridors and along them,
//! and fixes spread over time.

use anyhow::{bail, Context as _};
use caravan::maps::Atlas;
use caravan::simulate::{Route, TripPlan, TripRequest};
use caravan::transit::{Declaration, TransitRules};
use chrono::{DateTime, Duration, Utc};

use crate::traffic::Message;

/// Seconds between two fixes of one truck (a common tracker setting on the corridors).
pub const PERIOD_S: i64 = 30;
/// Metres a truck advances between two fixes: 60 km/h for one period.
const STEP_M: f64 = 500.0;

pub struct TransitFleet {
    pub ids: Vec<String>,
    routes: Vec<Route>,
}

impl TransitFleet {
    /// `n` devices named `{prefix}-NNNNNN`, dealt over the office-to-office routes of the
    /// shipped maps, both directions.
    ///
    /// # Errors
    /// The shipped maps or rules do not load, or no corridor runs between two offices.
    pub fn new(prefix: &str, n: usize) -> anyhow::Result<Self> {
        let atlas = Atlas::embedded().context("the shipped maps")?;
        let rules = TransitRules::shipped().context("the shipped rules")?;
        let routes: Vec<Route> = atlas
            .corridors
            .iter()
            .filter_map(|c| {
                let mut route = Route::between_offices(&atlas, c)?;
                route.plans = TripPlan::for_route(&atlas, rules, &route)?.to_vec();
                Some(route)
            })
            .collect();
        if routes.is_empty() {
            bail!("no corridor of the shipped maps runs between two customs offices");
        }
        Ok(Self {
            ids: crate::traffic::device_ids(prefix, n),
            routes,
        })
    }

    /// Office-to-office routes the fleet is spread over (each in two directions).
    pub fn corridors(&self) -> usize {
        self.routes.len()
    }

    /// Device `i`'s route and direction (0 forward, 1 backward).
    fn route(&self, i: usize) -> (&Route, usize) {
        let k = self.routes.len();
        (&self.routes[i % k], (i / k) % 2)
    }

    /// The transit device `i` declares, lodged `now`.
    pub fn declaration(&self, i: usize, now: DateTime<Utc>) -> Declaration {
        let (route, direction) = self.route(i);
        let request = TripRequest {
            plan: &route.plans[direction],
            reference: format!("LOAD-{i:07}"),
            device_id: &self.ids[i],
            plate: "01LOAD001",
            vehicle: i,
            number: 0,
            seal_id: &format!("LS-{i:07}"),
            departs_at: now.timestamp(),
        };
        request.declaration()
    }

    /// Fix number `k` (from 0) of device `i` at device time `t`: the truck's place along its
    /// route, its start spread along the route by a fixed stride, moving `STEP_M` per fix.
    /// A truck that reaches the end of its route stands there (speed 0) rather than jumping
    /// back to the start: a jump would raise alerts no real fleet raises.
    pub fn fix_json(&self, i: usize, k: u64, seq: u64, t: DateTime<Utc>) -> String {
        let (route, direction) = self.route(i);
        let length = route.length_m().max(1.0);
        // A stride of 7.919 km over the trucks of one route spreads them along it.
        let start = ((i / (2 * self.routes.len())) as f64 * 7_919.0) % length;
        let along = start + k as f64 * STEP_M;
        let (along, speed_kmh) = if along < length {
            (along, 60.0)
        } else {
            (length, 0.0)
        };
        let chainage = if direction == 0 {
            along
        } else {
            length - along
        };
        let place = route.place(chainage);
        let heading = if direction == 0 {
            place.bearing
        } else {
            (place.bearing + 180.0) % 360.0
        };
        format!(
            r#"{{"seq":{seq},"t":"{}","lat":{:.6},"lon":{:.6},"speed_kmh":{speed_kmh:.1},"heading_deg":{heading:.0},"hdop":0.9,"sats":11}}"#,
            t.format("%Y-%m-%dT%H:%M:%SZ"),
            place.lat,
            place.lon,
        )
    }

    /// `total` single fixes, round-robin over the devices: each device's fixes are
    /// `PERIOD_S` apart in device time, the last of them `end`; seqs from `seq_base + 1`, and
    /// places continuing from the `seq_base` fixes before them (the truck drives on).
    pub fn fixes(&self, total: usize, seq_base: u64, end: DateTime<Utc>) -> Vec<Message> {
        let n = self.ids.len();
        let rounds = total.div_ceil(n.max(1)) as i64;
        (0..total)
            .map(|m| {
                let i = m % n;
                let k = (m / n) as u64;
                let t = end - Duration::seconds(PERIOD_S * (rounds - 1 - k as i64));
                let seq = seq_base + k + 1;
                let topic = format!("caravan/v1/dev/{}/pos", self.ids[i]);
                (
                    i,
                    topic,
                    self.fix_json(i, seq_base + k, seq, t).into_bytes(),
                )
            })
            .collect()
    }
}
