//! Alerts across the transits a principal sees, and officers' actions on them.

use serde::Deserialize;
use warp::filters::BoxedFilter;
use warp::{Filter, Rejection, Reply};

use super::auth::principal;
use super::error::ApiError;
use super::transits::{act, may_see, transit_of_alert};
use super::{read, with, Context, MAX_BODY};
use crate::auth::{Principal, Role};
use crate::transit::{Action, Alert, AlertAction, AlertState, Transit};

/// Customs and posts see the alerts of their jurisdiction, and those escalated to them.
fn may_see_alert(who: &Principal, t: &Transit, alert: &Alert) -> bool {
    match who.role.country() {
        Some(cc) if !matches!(who.role, Role::Coordinator) => alert.visible_to_country(cc),
        _ => may_see(who, t),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// `open`, `acknowledged` or `resolved`; unresolved ones when absent.
    state: Option<AlertState>,
}

/// GET /api/v1/alerts?state=open
pub async fn list(query: ListQuery, who: Principal, ctx: Context) -> Result<impl Reply, Rejection> {
    let transits = read(&ctx, |r| r.transits(false, usize::MAX >> 1)).await?;
    let alerts: Vec<&Alert> = transits
        .iter()
        .filter(|t| may_see(&who, t))
        .flat_map(|t| t.alerts.iter().map(move |a| (t, a)))
        .filter(|(t, a)| may_see_alert(&who, t, a))
        .filter(|(_, a)| match query.state {
            Some(state) => a.state == state,
            None => a.is_unresolved(),
        })
        .map(|(_, a)| a)
        .collect();
    Ok(warp::reply::json(&serde_json::json!({ "alerts": alerts })))
}

/// POST /api/v1/alerts/{id}/actions
pub async fn action(
    id: String,
    who: Principal,
    body: AlertAction,
    ctx: Context,
) -> Result<impl Reply, Rejection> {
    let missing = || ApiError::not_found(format!("no alert {id}"));
    let transit_id = transit_of_alert(&id).ok_or_else(missing)?;
    let lookup = transit_id.0.clone();
    let t = read(&ctx, move |r| r.transit(&lookup))
        .await?
        .ok_or_else(missing)?;
    let alert = t.alerts.iter().find(|a| a.id == id).ok_or_else(missing)?;
    if !may_see_alert(&who, &t, alert) {
        return Err(missing().into());
    }
    let action = Action::Alert {
        alert_id: id.clone(),
        action: body,
    };
    act(transit_id.0, action, who, ctx).await
}

pub fn routes(ctx: Context) -> BoxedFilter<(warp::reply::Response,)> {
    let v1 = warp::path("api").and(warp::path("v1"));
    let who = || principal(ctx.clone());
    let list = v1
        .and(warp::path!("alerts"))
        .and(warp::get())
        .and(super::query())
        .and(who())
        .and(with(ctx.clone()))
        .and_then(list)
        .map(Reply::into_response);
    let action = v1
        .and(warp::path!("alerts" / String / "actions"))
        .and(warp::post())
        .and(who())
        .and(warp::body::content_length_limit(MAX_BODY))
        .and(warp::body::json())
        .and(with(ctx))
        .and_then(action)
        .map(Reply::into_response);
    list.or(action).unify().boxed()
}
