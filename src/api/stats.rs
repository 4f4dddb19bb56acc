//! Corridor performance (CAREC CPMM): time at a BCP and section speeds over a period.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use warp::filters::BoxedFilter;
use warp::{Filter, Rejection, Reply};

use super::auth::principal;
use super::error::ApiError;
use super::transits::now;
use super::{read, with, Context};
use crate::auth::{may_count_passage, may_count_section, Principal};
use crate::transit::performance::{bcp_times, section_speed, BcpPassage, SectionRun};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Period {
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
}

/// GET /api/v1/stats/bcps/{bcp_id}?from=T&to=T (default: the last 30 days)
pub async fn bcp(
    bcp_id: String,
    period: Period,
    who: Principal,
    ctx: Context,
) -> Result<impl Reply, Rejection> {
    let to = period.to.unwrap_or_else(now);
    let from = period.from.unwrap_or(to - Duration::days(30));
    if from > to {
        return Err(ApiError::bad_request("from must not be after to").into());
    }
    let transits = read(&ctx, |r| r.transits(false, usize::MAX >> 1)).await?;
    let passages: Vec<BcpPassage> = transits
        .iter()
        .flat_map(|t| t.passages.iter().map(move |p| (t, p)))
        .filter(|(t, p)| may_count_passage(&who, t, p))
        .map(|(_, p)| p)
        .filter(|p| p.bcp_id == bcp_id && p.left_at.is_some_and(|l| l >= from && l < to))
        .cloned()
        .collect();
    let sections = |to_id: &str, into: bool| -> Vec<SectionRun> {
        transits
            .iter()
            .flat_map(|t| t.sections.iter().map(move |s| (t, s)))
            .filter(|(t, s)| may_count_section(&who, t, s))
            .map(|(_, s)| s)
            .filter(|s| (if into { &s.to } else { &s.from }) == to_id)
            .filter(|s| s.ended_at >= from && s.ended_at < to)
            .cloned()
            .collect()
    };
    let body = serde_json::json!({
        "bcp_id": bcp_id, "from": from, "to": to,
        "time_at_bcp": bcp_times(&passages, &bcp_id, from, to),
        "passages": passages,
        "section_into": section_speed(&sections(&bcp_id, true)),
        "section_out_of": section_speed(&sections(&bcp_id, false)),
    });
    Ok(warp::reply::json(&body))
}

/// GET /api/v1/stats/sections?from=T&to=T (default: the last 30 days)
///
/// Speed with and without delay (CAREC CPMM) on every section between consecutive
/// checkpoints that visible transits completed in the period, one row per section.
pub async fn sections(
    period: Period,
    who: Principal,
    ctx: Context,
) -> Result<impl Reply, Rejection> {
    let to = period.to.unwrap_or_else(now);
    let from = period.from.unwrap_or(to - Duration::days(30));
    if from > to {
        return Err(ApiError::bad_request("from must not be after to").into());
    }
    let transits = read(&ctx, |r| r.transits(false, usize::MAX >> 1)).await?;
    let mut by_section: BTreeMap<(String, String), Vec<SectionRun>> = BTreeMap::new();
    for run in transits
        .iter()
        .flat_map(|t| t.sections.iter().map(move |s| (t, s)))
        .filter(|(t, s)| may_count_section(&who, t, s))
        .map(|(_, s)| s)
        .filter(|s| s.ended_at >= from && s.ended_at < to)
    {
        let key = (run.from.clone(), run.to.clone());
        by_section.entry(key).or_default().push(run.clone());
    }
    let rows: Vec<_> = by_section
        .values()
        .filter_map(|runs| section_speed(runs))
        .collect();
    let body = serde_json::json!({ "from": from, "to": to, "sections": rows });
    Ok(warp::reply::json(&body))
}

pub fn routes(ctx: Context) -> BoxedFilter<(warp::reply::Response,)> {
    let v1 = warp::path("api").and(warp::path("v1"));
    let bcp = v1
        .and(warp::path!("stats" / "bcps" / String))
        .and(warp::get())
        .and(super::query())
        .and(principal(ctx.clone()))
        .and(with(ctx.clone()))
        .and_then(bcp)
        .map(Reply::into_response);
    let sections = v1
        .and(warp::path!("stats" / "sections"))
        .and(warp::get())
        .and(super::query())
        .and(principal(ctx.clone()))
        .and(with(ctx))
        .and_then(sections)
        .map(Reply::into_response);
    bcp.or(sections).unify().boxed()
}
