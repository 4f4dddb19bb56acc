//! Transits: declaration, listing, one transit, officers' lifecycle actions and inspections.

use chrono::Utc;
use serde::Deserialize;
use tokio::sync::oneshot;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

use super::auth::principal;
use super::error::{self, ApiError};
use super::{read, with, Context, MAX_BODY};
use crate::auth::{Principal, Role};
use crate::pipeline::{Input, TransitCommand};
use crate::transit::{
    Action, ActionError, Actor, Declaration, InspectionReport, OfficerAction, Transit, TransitId,
};

/// Coordinators see every transit; customs the transits touching their country; a post
/// those through its BCP touching its country; a carrier its own.
pub fn may_see(who: &Principal, t: &Transit) -> bool {
    match &who.role {
        Role::Coordinator => true,
        Role::Carrier(id) => t.carrier == *id,
        Role::Customs(cc) => t.countries().contains(cc),
        Role::Post { bcp_id, country } => {
            t.countries().contains(country) && t.itinerary.checkpoint(bcp_id).is_some()
        }
    }
}

/// Officers act on transits they see; carriers only read.
fn may_act(who: &Principal, t: &Transit) -> bool {
    !matches!(who.role, Role::Carrier(_)) && may_see(who, t)
}

/// The transit if `who` may see it; otherwise the same 404 as a missing one.
pub async fn visible(id: String, who: &Principal, ctx: &Context) -> Result<Transit, Rejection> {
    let shown = id.clone();
    let found = read(ctx, move |r| r.transit(&id)).await?;
    found
        .filter(|t| may_see(who, t))
        .ok_or_else(|| ApiError::not_found(format!("no transit {shown}")).into())
}

async fn send(ctx: &Context, input: Input) -> Result<(), Rejection> {
    let stopping = || ApiError::unavailable("the server is shutting down");
    ctx.pipeline
        .send(input)
        .await
        .map_err(|_| stopping().into())
}

/// POST /api/v1/transits
pub async fn declare(
    who: Principal,
    body: Declaration,
    ctx: Context,
) -> Result<impl Reply, Rejection> {
    if !matches!(who.role, Role::Coordinator | Role::Customs(_)) {
        return Err(ApiError::forbidden("only customs and coordinators declare transits").into());
    }
    let (reply, answer) = oneshot::channel();
    let by = Actor(who.actor());
    let command = TransitCommand::Declare {
        declaration: Box::new(body),
        by,
        reply,
    };
    send(&ctx, Input::Transit(command)).await?;
    let stopping = || ApiError::unavailable("the server is shutting down");
    match answer.await.map_err(|_| stopping())? {
        Ok(t) => Ok(
            warp::reply::with_status(warp::reply::json(&t), StatusCode::CREATED).into_response(),
        ),
        Err(fields) => {
            let body = serde_json::json!({ "error": {
                "code": "invalid_declaration",
                "message": "the declaration has errors; see fields",
                "fields": fields,
            }});
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            Ok(warp::reply::with_status(warp::reply::json(&body), status).into_response())
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    open: Option<bool>,
    limit: Option<usize>,
}

/// GET /api/v1/transits?open=true&limit=N
pub async fn list(query: ListQuery, who: Principal, ctx: Context) -> Result<impl Reply, Rejection> {
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let open = query.open.unwrap_or(false);
    let all = read(&ctx, move |r| r.transits(open, usize::MAX >> 1)).await?;
    let transits: Vec<Transit> = all
        .into_iter()
        .filter(|t| may_see(&who, t))
        .take(limit)
        .collect();
    Ok(warp::reply::json(
        &serde_json::json!({ "transits": transits }),
    ))
}

/// GET /api/v1/transits/{id}
pub async fn get(id: String, who: Principal, ctx: Context) -> Result<impl Reply, Rejection> {
    let t = visible(id, &who, &ctx).await?;
    let status = t.status();
    let mut body = serde_json::to_value(&t).map_err(ApiError::internal)?;
    body["status"] = serde_json::to_value(status).map_err(ApiError::internal)?;
    Ok(warp::reply::json(&body))
}

/// Sends an action on a visible transit through the pipeline; answers after the commit.
pub async fn act(
    id: String,
    action: Action,
    who: Principal,
    ctx: Context,
) -> Result<warp::reply::Response, Rejection> {
    let t = visible(id, &who, &ctx).await?;
    if !may_act(&who, &t) {
        return Err(ApiError::forbidden("carriers cannot act on transits").into());
    }
    let (reply, answer) = oneshot::channel();
    let command = TransitCommand::Act {
        id: t.id.clone(),
        action,
        by: Actor(who.actor()),
        reply,
    };
    send(&ctx, Input::Transit(command)).await?;
    let stopping = || ApiError::unavailable("the server is shutting down");
    match answer.await.map_err(|_| stopping())? {
        Ok(t) => Ok(warp::reply::json(&t).into_response()),
        Err(e @ ActionError::NotFound(_)) => {
            Err(ApiError::conflict(format!("{e}: it is closed")).into())
        }
        Err(e) => Ok(error::reply(
            StatusCode::CONFLICT,
            "conflict",
            &e.to_string(),
        )),
    }
}

/// POST /api/v1/transits/{id}/actions
pub async fn lifecycle(
    id: String,
    who: Principal,
    body: OfficerAction,
    ctx: Context,
) -> Result<impl Reply, Rejection> {
    act(id, Action::Lifecycle(body), who, ctx).await
}

/// POST /api/v1/transits/{id}/inspections
pub async fn inspect(
    id: String,
    who: Principal,
    body: InspectionReport,
    ctx: Context,
) -> Result<impl Reply, Rejection> {
    act(id, Action::Inspect(body), who, ctx).await
}

pub fn routes(ctx: Context) -> BoxedFilter<(warp::reply::Response,)> {
    let v1 = warp::path("api").and(warp::path("v1"));
    let who = || principal(ctx.clone());
    let declare = v1
        .and(warp::path!("transits"))
        .and(warp::post())
        .and(who())
        .and(warp::body::content_length_limit(MAX_BODY))
        .and(warp::body::json())
        .and(with(ctx.clone()))
        .and_then(declare)
        .map(Reply::into_response);
    let list = v1
        .and(warp::path!("transits"))
        .and(warp::get())
        .and(warp::query())
        .and(who())
        .and(with(ctx.clone()))
        .and_then(list)
        .map(Reply::into_response);
    let get = v1
        .and(warp::path!("transits" / String))
        .and(warp::get())
        .and(who())
        .and(with(ctx.clone()))
        .and_then(get)
        .map(Reply::into_response);
    let lifecycle = v1
        .and(warp::path!("transits" / String / "actions"))
        .and(warp::post())
        .and(who())
        .and(warp::body::content_length_limit(MAX_BODY))
        .and(warp::body::json())
        .and(with(ctx.clone()))
        .and_then(lifecycle)
        .map(Reply::into_response);
    let inspect = v1
        .and(warp::path!("transits" / String / "inspections"))
        .and(warp::post())
        .and(who())
        .and(warp::body::content_length_limit(MAX_BODY))
        .and(warp::body::json())
        .and(with(ctx))
        .and_then(inspect)
        .map(Reply::into_response);
    declare
        .or(list)
        .unify()
        .or(get)
        .unify()
        .or(lifecycle)
        .unify()
        .or(inspect)
        .unify()
        .boxed()
}

/// Parses a transit id from an alert id (`{transit_id}.{n}`).
pub fn transit_of_alert(alert_id: &str) -> Option<TransitId> {
    alert_id
        .rsplit_once('.')
        .map(|(t, _)| TransitId(t.to_owned()))
}

/// Now, for handlers that compute ETAs.
pub fn now() -> chrono::DateTime<Utc> {
    Utc::now()
}
