//! Transits: declaration, listing, one transit, officers' lifecycle actions and inspections.

use chrono::Utc;
use serde::Deserialize;
use tokio::sync::oneshot;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

use super::auth::principal;
use super::error::{self, ApiError};
use super::scope::country_at;
use super::{read, with, Context, MAX_BODY};
use crate::auth::{
    may_act, may_declare, may_see_transit, transit_for, DeclarationScope, Principal,
};
use crate::maps::CountryCode;
use crate::pipeline::{Input, TransitCommand};
use crate::telemetry::DeviceId;
use crate::transit::{
    Action, ActionError, Actor, Declaration, InspectionReport, OfficerAction, Transit, TransitId,
};

/// The transit if `who` may see it; otherwise the same 404 as a missing one.
pub async fn visible(id: String, who: &Principal, ctx: &Context) -> Result<Transit, Rejection> {
    let shown = id.clone();
    let found = read(ctx, move |r| r.transit(&id)).await?;
    found
        .filter(|t| may_see_transit(who, t))
        .ok_or_else(|| ApiError::not_found(format!("no transit {shown}")).into())
}

/// A transit as `who` may see it (alerts, inspections and position filtered).
pub fn shown(who: &Principal, t: &Transit, ctx: &Context) -> Transit {
    transit_for(who, t, |lat, lon| country_at(ctx, lat, lon))
}

/// The countries a declaration touches: its offices and both sides of each BCP it names.
fn declared_countries(ctx: &Context, body: &Declaration) -> Vec<CountryCode> {
    let atlas = &ctx.atlas;
    let mut out: Vec<CountryCode> = Vec::new();
    let offices = [&body.departure_office, &body.destination_office];
    let office_countries = offices
        .into_iter()
        .filter_map(|id| atlas.office(id).map(|o| o.country));
    let bcp_countries = body
        .itinerary
        .iter()
        .filter_map(|id| atlas.bcp(id))
        .flat_map(|b| b.posts.iter().map(|p| p.country));
    for cc in office_countries.chain(bcp_countries) {
        if !out.contains(&cc) {
            out.push(cc);
        }
    }
    out
}

/// The carrier each declared device is registered to.
async fn device_carriers(
    ctx: &Context,
    body: &Declaration,
) -> Result<Vec<(String, Option<String>)>, Rejection> {
    let mut ids: Vec<String> = body.devices.clone();
    ids.extend(body.seals.iter().filter_map(|s| s.device_id.clone()));
    read(ctx, move |r| {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let owner = match DeviceId::parse(&id) {
                Ok(parsed) => r.device(&parsed)?.map(|(d, _)| d.carrier),
                Err(_) => None,
            };
            out.push((id, owner));
        }
        Ok(out)
    })
    .await
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
    let countries = declared_countries(&ctx, &body);
    let device_carriers = device_carriers(&ctx, &body).await?;
    let scope = DeclarationScope {
        carrier: &body.carrier,
        countries: &countries,
        device_carriers: &device_carriers,
    };
    may_declare(&who, &scope).map_err(ApiError::forbidden)?;
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
    /// declared, departed, in_transit, at_bcp, arrived, closed, cancelled, suspended
    status: Option<String>,
    /// Transits with a leg in this country (ISO alpha-2).
    country: Option<String>,
    /// green, yellow or red.
    lane: Option<String>,
    /// Transits whose approved route uses this corridor.
    corridor: Option<String>,
    has_open_alert: Option<bool>,
    /// Part of the declaration reference or of a vehicle or trailer plate.
    q: Option<String>,
    /// Cursor: the id of the last transit of the previous page.
    after: Option<String>,
    limit: Option<usize>,
}

impl ListQuery {
    fn check(&self) -> Result<(), Rejection> {
        let statuses = [
            "declared",
            "departed",
            "in_transit",
            "at_bcp",
            "arrived",
            "closed",
            "cancelled",
            "suspended",
        ];
        if let Some(status) = &self.status {
            if !statuses.contains(&status.as_str()) {
                let message = format!("status: one of {}", statuses.join(", "));
                return Err(ApiError::bad_request(message).into());
            }
        }
        if let Some(lane) = &self.lane {
            if !["green", "yellow", "red"].contains(&lane.as_str()) {
                return Err(ApiError::bad_request("lane: green, yellow or red").into());
            }
        }
        if let Some(country) = &self.country {
            if country.parse::<crate::maps::CountryCode>().is_err() {
                return Err(ApiError::bad_request("country: an ISO 3166 alpha-2 code").into());
            }
        }
        Ok(())
    }

    fn matches(&self, t: &Transit) -> bool {
        let status_ok = self
            .status
            .as_deref()
            .is_none_or(|s| t.status().as_str() == s);
        let country_ok = self.country.as_deref().is_none_or(|cc| {
            t.countries()
                .iter()
                .any(|c| c.as_str().eq_ignore_ascii_case(cc))
        });
        let lane_ok = self.lane.as_deref().is_none_or(|lane| {
            serde_json::to_value(t.risk.lane)
                .ok()
                .and_then(|v| v.as_str().map(|l| l == lane))
                == Some(true)
        });
        let corridor_ok = self.corridor.as_deref().is_none_or(|id| {
            t.itinerary
                .route
                .as_ref()
                .is_some_and(|r| r.legs.iter().any(|l| l.corridor_id == id))
        });
        let alert_ok = self.has_open_alert.is_none_or(|wanted| {
            let open = t
                .alerts
                .iter()
                .any(|a| a.state != crate::transit::AlertState::Resolved);
            open == wanted
        });
        let q_ok = self.q.as_deref().is_none_or(|q| {
            let q = q.to_lowercase();
            std::iter::once(&t.reference)
                .chain(std::iter::once(&t.vehicle_plate))
                .chain(t.trailer_plates.iter())
                .any(|text| text.to_lowercase().contains(&q))
        });
        status_ok && country_ok && lane_ok && corridor_ok && alert_ok && q_ok
    }
}

/// GET /api/v1/transits?open=&status=&country=&lane=&corridor=&has_open_alert=&q=&after=&limit=
pub async fn list(query: ListQuery, who: Principal, ctx: Context) -> Result<impl Reply, Rejection> {
    query.check()?;
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let open = query.open.unwrap_or(false);
    let mut all = read(&ctx, move |r| r.transits(open, usize::MAX >> 1)).await?;
    all.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
    let after = query.after.clone().unwrap_or_default();
    let transits: Vec<Transit> = all
        .into_iter()
        .filter(|t| t.id.as_str() > after.as_str())
        .filter(|t| may_see_transit(&who, t))
        .map(|t| shown(&who, &t, &ctx))
        .filter(|t| query.matches(t))
        .take(limit)
        .collect();
    let next = (transits.len() == limit)
        .then(|| transits.last().map(|t| t.id.to_string()))
        .flatten();
    Ok(warp::reply::json(
        &serde_json::json!({ "transits": transits, "next": next }),
    ))
}

/// GET /api/v1/transits/{id}
pub async fn get(id: String, who: Principal, ctx: Context) -> Result<impl Reply, Rejection> {
    let t = visible(id, &who, &ctx).await?;
    let status = t.status();
    let t = shown(&who, &t, &ctx);
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
    may_act(&who, &t, &action).map_err(ApiError::forbidden)?;
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
        Ok(t) => Ok(warp::reply::json(&shown(&who, &t, &ctx)).into_response()),
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
        .and(super::query())
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
    alert_id.rsplit_once('.').map(|(t, _)| TransitId::from(t))
}

/// Now, for handlers that compute ETAs.
pub fn now() -> chrono::DateTime<Utc> {
    Utc::now()
}
