//! Alerts across the transits a principal sees, and officers' actions on them.

use serde::Deserialize;
use warp::filters::BoxedFilter;
use warp::{Filter, Rejection, Reply};

use super::auth::principal;
use super::error::ApiError;
use super::transits::{act, transit_of_alert};
use super::{read, with, Context, MAX_BODY};
use crate::auth::{may_see_alert, Principal};
use crate::transit::{Action, Alert, AlertAction, AlertState, Outcome, Transit};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// `open`, `acknowledged` or `resolved`; unresolved ones when absent.
    state: Option<AlertState>,
    /// `info`, `warning` or `critical`.
    severity: Option<String>,
    /// Cursor: the id of the last alert of the previous page.
    after: Option<String>,
    limit: Option<usize>,
}

/// GET /api/v1/alerts?state=&severity=&after=&limit=
pub async fn list(query: ListQuery, who: Principal, ctx: Context) -> Result<impl Reply, Rejection> {
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let transits = read(&ctx, |r| r.transits(false, usize::MAX >> 1)).await?;
    let after = query.after.clone().unwrap_or_default();
    let mut alerts: Vec<&Alert> = transits
        .iter()
        .flat_map(|t| t.alerts.iter().map(move |a| (t, a)))
        .filter(|(t, a)| may_see_alert(&who, t, a))
        .filter(|(_, a)| match query.state {
            Some(state) => a.state == state,
            None => a.is_unresolved(),
        })
        .filter(|(_, a)| {
            query.severity.as_deref().is_none_or(|s| {
                serde_json::to_value(a.severity)
                    .ok()
                    .and_then(|v| v.as_str().map(|v| v == s))
                    == Some(true)
            })
        })
        .map(|(_, a)| a)
        .filter(|a| a.id > after)
        .collect();
    alerts.sort_by(|a, b| a.id.cmp(&b.id));
    alerts.truncate(limit);
    let next = (alerts.len() == limit)
        .then(|| alerts.last().map(|a| a.id.clone()))
        .flatten();
    Ok(warp::reply::json(
        &serde_json::json!({ "alerts": alerts, "next": next }),
    ))
}

/// The alert and its transit, if `who` may see it; otherwise the same 404 as a missing one.
async fn visible_alert(
    id: &str,
    who: &Principal,
    ctx: &Context,
) -> Result<(Transit, Alert), Rejection> {
    let missing = || ApiError::not_found(format!("no alert {id}"));
    let transit_id = transit_of_alert(id).ok_or_else(missing)?;
    let t = read(ctx, move |r| r.transit(transit_id.as_str()))
        .await?
        .ok_or_else(missing)?;
    let alert = t
        .alerts
        .iter()
        .find(|a| a.id == id)
        .cloned()
        .ok_or_else(missing)?;
    if !may_see_alert(who, &t, &alert) {
        return Err(missing().into());
    }
    Ok((t, alert))
}

/// GET /api/v1/alerts/{id}
pub async fn get(id: String, who: Principal, ctx: Context) -> Result<impl Reply, Rejection> {
    let (_, alert) = visible_alert(&id, &who, &ctx).await?;
    Ok(warp::reply::json(&alert))
}

/// What an officer may ask of an alert: the domain's actions, and `escalate`, which hands
/// the alert to the next country's authority (a resolution with the outcome `escalated`).
#[derive(Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum AlertRequest {
    Acknowledge {
        #[serde(default)]
        note: Option<String>,
    },
    Assign {
        to: String,
    },
    Resolve {
        outcome: Outcome,
        #[serde(default)]
        notes: Option<String>,
    },
    Escalate {
        #[serde(default)]
        notes: Option<String>,
    },
}

impl From<AlertRequest> for AlertAction {
    fn from(request: AlertRequest) -> Self {
        match request {
            AlertRequest::Acknowledge { note } => AlertAction::Acknowledge { note },
            AlertRequest::Assign { to } => AlertAction::Assign { to },
            AlertRequest::Resolve { outcome, notes } => AlertAction::Resolve { outcome, notes },
            AlertRequest::Escalate { notes } => AlertAction::Resolve {
                outcome: Outcome::Escalated,
                notes,
            },
        }
    }
}

/// POST /api/v1/alerts/{id}/actions
pub async fn action(
    id: String,
    who: Principal,
    body: AlertRequest,
    ctx: Context,
) -> Result<impl Reply, Rejection> {
    let (t, _) = visible_alert(&id, &who, &ctx).await?;
    let action = Action::Alert {
        alert_id: id.clone(),
        action: body.into(),
    };
    act(t.id.as_str().to_owned(), action, who, ctx).await
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
    let get = v1
        .and(warp::path!("alerts" / String))
        .and(warp::get())
        .and(who())
        .and(with(ctx.clone()))
        .and_then(get)
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
    list.or(get).unify().or(action).unify().boxed()
}
