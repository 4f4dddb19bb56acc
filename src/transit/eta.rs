//! Expected arrival at a post: the remaining distance along the route over the recent moving
//! speed (or the CPMM speed with delay until the truck has shown its own), plus the typical
//! dwell at each BCP still to be passed before it; shown in the post's local time.

use chrono::{DateTime, Duration, FixedOffset, Utc};
use serde::{Deserialize, Serialize};

use super::itinerary::CheckpointKind;
use super::model::{Stage, Transit};
use super::rules::TransitRules;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpeedSource {
    /// The mean of the truck's recent moving fixes.
    Recent,
    /// The CPMM average speed with delay, from the rules.
    Default,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Eta {
    pub post_id: String,
    pub at: DateTime<Utc>,
    /// The same instant in the post's local time.
    pub local: DateTime<FixedOffset>,
    /// The post's IANA time zone (`Asia/Irkutsk`), for clients that show other times there.
    pub time_zone: String,
    pub remaining_m: f64,
    pub speed_kmh: f64,
    pub speed_source: SpeedSource,
    /// When the transit is expected to have cleared the BCP (ETA plus its typical dwell).
    pub expected_clearance: DateTime<Utc>,
}

/// The ETA of `transit` at `post_id`, if that post lies ahead of it.
pub fn eta_at_post(
    transit: &Transit,
    rules: &TransitRules,
    post_id: &str,
    now: DateTime<Utc>,
) -> Option<Eta> {
    let it = &transit.itinerary;
    let (k, cp) = it.checkpoint_of_post(post_id)?;
    let post = cp.posts.iter().find(|p| p.id == post_id)?;
    if k <= transit.leg || transit.stage.is_final() || transit.stage == Stage::Arrived {
        return None;
    }
    let here_m = transit
        .motion
        .chainage_m
        .or_else(|| it.checkpoints.get(transit.leg).map(|c| c.chainage_m))
        .unwrap_or(0.0);
    let remaining_m = (cp.chainage_m - here_m).max(0.0);
    let (speed_kmh, speed_source) = match transit.motion.moving_speed_kmh() {
        Some(s) if s > 0.0 => (s, SpeedSource::Recent),
        _ => (rules.speed.with_delay_kmh, SpeedSource::Default),
    };
    let mut at = now + TransitRules::drive(remaining_m, speed_kmh);
    for between in it.checkpoints.iter().take(k).skip(transit.leg + 1) {
        if between.kind == CheckpointKind::Bcp {
            at += dwell_left(transit, rules, &between.id, now);
        }
    }
    if transit.stage == Stage::AtBcp && k == transit.leg + 1 {
        at = now.max(at);
    }
    let zone = rules.zone(post_id, post.country);
    Some(Eta {
        post_id: post_id.to_owned(),
        at,
        local: at.with_timezone(&zone).fixed_offset(),
        time_zone: zone.name().to_owned(),
        remaining_m,
        speed_kmh,
        speed_source,
        expected_clearance: at + dwell_left(transit, rules, &cp.id, at),
    })
}

/// A post whose expected arrivals list a transit, and how long after any `now` the transit
/// is expected there: its next checkpoint is that post's BCP, with no dwell between, so the
/// ETA is `now` plus this and posts can keep their arrivals in ETA order without a clock.
#[derive(Clone, Debug, PartialEq)]
pub struct Expectation<'a> {
    pub post_id: &'a str,
    pub after: Duration,
}

/// The posts where `transit` is expected next: those of its next checkpoint for which
/// [`eta_at_post`] answers.
pub fn expectations<'a>(transit: &'a Transit, rules: &TransitRules) -> Vec<Expectation<'a>> {
    let Some(next) = transit.next_checkpoint() else {
        return Vec::new();
    };
    let it = &transit.itinerary;
    let Some(cp) = it.checkpoints.get(transit.leg + 1) else {
        return Vec::new();
    };
    let now = DateTime::<Utc>::UNIX_EPOCH;
    cp.posts
        .iter()
        .filter(|p| {
            it.checkpoint_of_post(&p.id)
                .is_some_and(|(_, c)| c.id == next)
        })
        .filter_map(|p| {
            let eta = eta_at_post(transit, rules, &p.id, now)?;
            Some(Expectation {
                post_id: &p.id,
                after: eta.at - now,
            })
        })
        .collect()
}

/// The typical dwell at a BCP, less what the transit has already spent there.
fn dwell_left(
    transit: &Transit,
    rules: &TransitRules,
    bcp_id: &str,
    now: DateTime<Utc>,
) -> Duration {
    let typical = rules.dwell(bcp_id);
    let spent = transit
        .passages
        .iter()
        .rev()
        .find(|p| p.bcp_id == bcp_id && p.left_at.is_none())
        .map_or(Duration::zero(), |p| now - p.entered_at);
    (typical - spent).max(Duration::zero())
}
