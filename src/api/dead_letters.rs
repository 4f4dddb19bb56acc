//! Refused messages, for the operator: what a device sent that Caravan could not use, and why.

use serde::Deserialize;
use warp::filters::BoxedFilter;
use warp::{Filter, Rejection, Reply};

use super::auth::principal;
use super::error::ApiError;
use super::{read, with, Context};
use crate::auth::{Principal, Role};
use crate::ingest::render_dead_letter;
use crate::telemetry::RejectReason;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Query {
    reason: Option<String>,
    limit: Option<usize>,
}

/// GET /api/v1/dead-letters?reason=R&limit=N (newest first; coordinators only)
pub async fn list(query: Query, who: Principal, ctx: Context) -> Result<impl Reply, Rejection> {
    if who.role != Role::Coordinator {
        return Err(ApiError::forbidden("only a coordinator reads dead letters").into());
    }
    let reason = match query.reason.as_deref() {
        None => None,
        Some(raw) => Some(RejectReason::parse(raw).ok_or_else(|| {
            let known: Vec<_> = RejectReason::ALL.iter().map(|r| r.as_str()).collect();
            ApiError::bad_request(format!("reason: one of {}", known.join(", ")))
        })?),
    };
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let letters = read(&ctx, move |r| r.dead_letters(reason, limit)).await?;
    let rendered: Vec<serde_json::Value> = letters
        .iter()
        .map(|letter| {
            let (_, payload) = render_dead_letter(letter);
            serde_json::from_slice(&payload).unwrap_or_default()
        })
        .collect();
    Ok(warp::reply::json(
        &serde_json::json!({ "dead_letters": rendered }),
    ))
}

pub fn routes(ctx: Context) -> BoxedFilter<(warp::reply::Response,)> {
    warp::path!("api" / "v1" / "dead-letters")
        .and(warp::get())
        .and(super::query())
        .and(principal(ctx.clone()))
        .and(with(ctx))
        .and_then(list)
        .map(Reply::into_response)
        .boxed()
}
