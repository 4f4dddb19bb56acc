//! MQTT credentials of devices and gateways: rotation and revocation, each in the event log
//! with the principal who did it. A device's first credential comes with its registration
//! (`POST /api/v1/devices`).

use chrono::Utc;
use serde::Deserialize;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

use super::auth::principal;
use super::error::ApiError;
use super::{commit, read, with, Context, MAX_BODY};
use crate::auth::account::{self, AccountKind};
use crate::auth::{may_manage_device, Principal, Role};
use crate::store::{LoggedEvent, NewAccount, Write};
use crate::telemetry::DeviceId;

/// The credential as the API shows it, once: the MQTT username and password to use.
pub fn shown_once(username: &str, secret: &str) -> serde_json::Value {
    serde_json::json!({
        "username": username,
        "password": secret,
        "note": "Shown only now; Caravan keeps only a hash of it.",
    })
}

/// A gateway name from a request, checked.
pub fn gateway_username(name: &str) -> Result<String, Rejection> {
    account::gateway_username(name)
        .map_err(|e| ApiError::bad_request(format!("gateway: {e}")).into())
}

fn event(
    kind: &str,
    device_id: Option<DeviceId>,
    who: &Principal,
    body: serde_json::Value,
) -> Write {
    let now = Utc::now();
    Write::Event(LoggedEvent {
        kind: kind.into(),
        device_id,
        transit_id: None,
        occurred_at: now,
        detected_at: now,
        late: false,
        actor: Some(who.actor()),
        body,
    })
}

/// Ends the account's live session on the embedded endpoint, if it has one.
fn disconnect(ctx: &Context, username: &str) {
    if let Some(sessions) = &ctx.sessions {
        sessions.disconnect(username);
    }
}

/// The device, if `who` may manage its credential: 404 for a device `who` does not see (as
/// for a missing one), 403 for one it sees but may not manage (docs/access.md).
async fn managed_device(id: &str, who: &Principal, ctx: &Context) -> Result<DeviceId, Rejection> {
    let id = DeviceId::parse(id).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let (device, _, _) = super::scope::visible_device(&id, who, ctx).await?;
    if !may_manage_device(who, &device) {
        let message = "only a coordinator, customs or the device's carrier manage its credential";
        return Err(ApiError::forbidden(message).into());
    }
    Ok(id)
}

/// POST /api/v1/devices/{id}/credential
///
/// A new secret; the old one stops working at once.
pub async fn rotate_device(
    id: String,
    who: Principal,
    ctx: Context,
) -> Result<impl Reply, Rejection> {
    let id = managed_device(&id, &who, &ctx).await?;
    let username = id.as_str().to_owned();
    let lookup = username.clone();
    let gateway = read(&ctx, move |r| r.account(&lookup))
        .await?
        .and_then(|a| a.gateway);
    let issued = account::issue(AccountKind::Device).map_err(ApiError::internal)?;
    let writes = vec![
        Write::Account(NewAccount {
            username: username.clone(),
            kind: AccountKind::Device,
            hash: issued.hash,
            gateway: gateway.clone(),
            created_at: Utc::now(),
        }),
        event(
            "mqtt_credential_issued",
            Some(id),
            &who,
            serde_json::json!({ "username": username, "gateway": gateway }),
        ),
    ];
    commit(&ctx, writes).await?;
    disconnect(&ctx, &username);
    Ok(warp::reply::with_status(
        warp::reply::json(&shown_once(&username, &issued.secret)),
        StatusCode::CREATED,
    ))
}

/// DELETE /api/v1/devices/{id}/credential
///
/// The device can no longer connect.
pub async fn revoke_device(
    id: String,
    who: Principal,
    ctx: Context,
) -> Result<impl Reply, Rejection> {
    let id = managed_device(&id, &who, &ctx).await?;
    let username = id.as_str().to_owned();
    let writes = vec![
        Write::RevokeAccount {
            username: username.clone(),
            at: Utc::now(),
        },
        event(
            "mqtt_credential_revoked",
            Some(id),
            &who,
            serde_json::json!({ "username": username }),
        ),
    ];
    commit(&ctx, writes).await?;
    disconnect(&ctx, &username);
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewGateway {
    name: String,
}

fn coordinator_only(who: &Principal) -> Result<(), Rejection> {
    match who.role {
        Role::Coordinator => Ok(()),
        _ => Err(ApiError::forbidden("only a coordinator manages gateway accounts").into()),
    }
}

/// POST /api/v1/gateways
///
/// `{"name": "firmware-bridge"}`: creates the gateway's account, or gives it a new secret.
pub async fn issue_gateway(
    who: Principal,
    body: NewGateway,
    ctx: Context,
) -> Result<impl Reply, Rejection> {
    coordinator_only(&who)?;
    let username = gateway_username(&body.name)?;
    let lookup = username.clone();
    let existing = read(&ctx, move |r| r.account(&lookup)).await?;
    if existing.is_some_and(|a| a.kind != AccountKind::Gateway) {
        return Err(ApiError::conflict(format!("{username} is a device's account")).into());
    }
    let issued = account::issue(AccountKind::Gateway).map_err(ApiError::internal)?;
    let writes = vec![
        Write::Account(NewAccount {
            username: username.clone(),
            kind: AccountKind::Gateway,
            hash: issued.hash,
            gateway: None,
            created_at: Utc::now(),
        }),
        event(
            "mqtt_credential_issued",
            None,
            &who,
            serde_json::json!({ "username": username, "kind": "gateway" }),
        ),
    ];
    commit(&ctx, writes).await?;
    disconnect(&ctx, &username);
    Ok(warp::reply::with_status(
        warp::reply::json(&shown_once(&username, &issued.secret)),
        StatusCode::CREATED,
    ))
}

/// DELETE /api/v1/gateways/{name}/credential
pub async fn revoke_gateway(
    name: String,
    who: Principal,
    ctx: Context,
) -> Result<impl Reply, Rejection> {
    coordinator_only(&who)?;
    let lookup = name.clone();
    let existing = read(&ctx, move |r| r.account(&lookup)).await?;
    if !existing.is_some_and(|a| a.kind == AccountKind::Gateway) {
        return Err(ApiError::not_found(format!("no gateway {name}")).into());
    }
    let writes = vec![
        Write::RevokeAccount {
            username: name.clone(),
            at: Utc::now(),
        },
        event(
            "mqtt_credential_revoked",
            None,
            &who,
            serde_json::json!({ "username": name, "kind": "gateway" }),
        ),
    ];
    commit(&ctx, writes).await?;
    disconnect(&ctx, &name);
    Ok(StatusCode::NO_CONTENT)
}

pub fn routes(ctx: Context) -> BoxedFilter<(warp::reply::Response,)> {
    let v1 = warp::path("api").and(warp::path("v1"));
    let who = || principal(ctx.clone());
    let rotate = v1
        .and(warp::path!("devices" / String / "credential"))
        .and(warp::post())
        .and(who())
        .and(with(ctx.clone()))
        .and_then(rotate_device)
        .map(Reply::into_response);
    let revoke = v1
        .and(warp::path!("devices" / String / "credential"))
        .and(warp::delete())
        .and(who())
        .and(with(ctx.clone()))
        .and_then(revoke_device)
        .map(Reply::into_response);
    let gateway = v1
        .and(warp::path!("gateways"))
        .and(warp::post())
        .and(who())
        .and(warp::body::content_length_limit(MAX_BODY))
        .and(warp::body::json())
        .and(with(ctx.clone()))
        .and_then(issue_gateway)
        .map(Reply::into_response);
    let revoke_gw = v1
        .and(warp::path!("gateways" / String / "credential"))
        .and(warp::delete())
        .and(who())
        .and(with(ctx))
        .and_then(revoke_gateway)
        .map(Reply::into_response);
    rotate
        .or(revoke)
        .unify()
        .or(gateway)
        .unify()
        .or(revoke_gw)
        .unify()
        .boxed()
}
