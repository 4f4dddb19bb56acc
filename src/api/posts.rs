//! Border posts: the transits expected next, with ETA in the post's local time, risk lane,
//! seal state, open alerts and earlier inspections.

use serde::Serialize;
use warp::filters::BoxedFilter;
use warp::{Filter, Rejection, Reply};

use super::auth::principal;
use super::transits::now;
use super::{read, with, Context};
use crate::auth::{may_see_alert, may_see_inspection, may_see_transit, Principal};
use crate::store::{StoreError, StoreReader};
use crate::telemetry::DeviceId;
use crate::transit::eta::{eta_at_post, Eta};
use crate::transit::{Alert, Inspection, RiskAssessment, Seal, Status, Transit};

#[derive(Serialize)]
struct Expected<'a> {
    transit_id: &'a str,
    reference: &'a str,
    carrier: &'a str,
    vehicle_plate: &'a str,
    /// The transit's devices and its latest fix, so the post's map can show the trucks it
    /// expects even while they are still in another country.
    devices: &'a [DeviceId],
    #[serde(skip_serializing_if = "Option::is_none")]
    last_fix: Option<LastFix>,
    status: Status,
    eta: Eta,
    risk: &'a RiskAssessment,
    seals: Vec<&'a Seal>,
    open_alerts: Vec<&'a Alert>,
    inspections: Vec<&'a Inspection>,
}

/// Where and when the transit's truck was last seen on its route.
#[derive(Serialize)]
struct LastFix {
    t: chrono::DateTime<chrono::Utc>,
    lat: f64,
    lon: f64,
}

#[derive(Serialize)]
struct Arrivals<'a> {
    post_id: &'a str,
    expected: Vec<Expected<'a>>,
}

/// Rows of one answer by default: the next arrivals a post works through, soonest first.
/// (The latency target of `BENCHMARKS.md` is measured at this size.)
pub const DEFAULT_EXPECTED: usize = 25;
/// The most rows one answer may ask for.
pub const MAX_EXPECTED: usize = 200;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedQuery {
    limit: Option<usize>,
}

/// The first `limit` transits expected next at `post_id` that `who` may see, in ETA order,
/// read a page at a time so a narrow scope still fills its answer.
fn visible_expected(
    r: &dyn StoreReader,
    who: &Principal,
    post_id: &str,
    limit: usize,
) -> Result<Vec<Transit>, StoreError> {
    let mut shown = Vec::new();
    let mut skip = 0;
    loop {
        let page = r.transits_expected_at(post_id, skip, limit)?;
        let full = page.len() == limit;
        skip += page.len();
        shown.extend(page.into_iter().filter(|t| may_see_transit(who, t)));
        if !full || shown.len() >= limit {
            shown.truncate(limit);
            return Ok(shown);
        }
    }
}

/// GET /api/v1/posts/{post_id}/expected-arrivals?limit=N (default 25, at most 200)
pub async fn expected(
    post_id: String,
    query: ExpectedQuery,
    who: Principal,
    ctx: Context,
) -> Result<impl Reply, Rejection> {
    let limit = query
        .limit
        .unwrap_or(DEFAULT_EXPECTED)
        .clamp(1, MAX_EXPECTED);
    let rules = ctx.transit_rules.clone();
    let (post, viewer) = (post_id.clone(), who.clone());
    let transits = read(&ctx, move |r| visible_expected(r, &viewer, &post, limit)).await?;
    let now = now();
    let mut rows: Vec<Expected<'_>> = transits
        .iter()
        .filter(|t| may_see_transit(&who, t))
        .filter_map(|t| {
            let eta = eta_at_post(t, &rules, &post_id, now)?;
            let next = t.next_checkpoint()?;
            let ours = t
                .itinerary
                .checkpoint_of_post(&post_id)
                .map(|(_, c)| c.id.as_str());
            (Some(next) == ours).then(|| Expected {
                transit_id: t.id.as_str(),
                reference: &t.reference,
                carrier: &t.carrier,
                vehicle_plate: &t.vehicle_plate,
                devices: &t.devices,
                last_fix: t.motion.point.zip(t.motion.last_t).map(|(p, at)| LastFix {
                    t: at,
                    lat: p.lat,
                    lon: p.lon,
                }),
                status: t.status(),
                eta,
                risk: &t.risk,
                seals: t.current_seals().collect(),
                open_alerts: t
                    .alerts
                    .iter()
                    .filter(|a| a.is_unresolved() && may_see_alert(&who, t, a))
                    .collect(),
                inspections: t
                    .inspections
                    .iter()
                    .filter(|i| may_see_inspection(&who, t, i))
                    .collect(),
            })
        })
        .collect();
    rows.sort_by_key(|r| r.eta.at);
    Ok(warp::reply::json(&Arrivals {
        post_id: &post_id,
        expected: rows,
    }))
}

pub fn routes(ctx: Context) -> BoxedFilter<(warp::reply::Response,)> {
    warp::path("api")
        .and(warp::path("v1"))
        .and(warp::path!("posts" / String / "expected-arrivals"))
        .and(warp::get())
        .and(super::query())
        .and(principal(ctx.clone()))
        .and(with(ctx))
        .and_then(expected)
        .map(Reply::into_response)
        .boxed()
}
