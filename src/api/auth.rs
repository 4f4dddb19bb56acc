//! Who is calling: bearer tokens, `/me`, and token management for coordinators.

use chrono::Utc;
use serde::Deserialize;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

use super::error::ApiError;
use super::{commit, read, with, Context, MAX_BODY};
use crate::auth::{token, Principal, Role};
use crate::store::{LoggedEvent, Write};
use crate::tokens;

/// The caller, from `Authorization: Bearer TOKEN`. Tokens are never taken from a URL, where
/// proxies, logs and browser histories keep them; the live stream has its own tickets.
pub fn principal(ctx: Context) -> BoxedFilter<(Principal,)> {
    warp::header::optional::<String>("authorization")
        .and(with(ctx))
        .and_then(authenticate)
        .boxed()
}

fn bearer(header: Option<&str>) -> Option<String> {
    header?.strip_prefix("Bearer ").map(|t| t.trim().to_owned())
}

pub(super) async fn authenticate(
    header: Option<String>,
    ctx: Context,
) -> Result<Principal, Rejection> {
    let unauthorized = || ApiError::unauthorized("send a valid token: Authorization: Bearer TOKEN");
    let token = bearer(header.as_deref()).ok_or_else(unauthorized)?;
    let hash = token::hash(&token);
    read(&ctx, move |r| r.principal(&hash))
        .await?
        .ok_or_else(|| unauthorized().into())
}

fn coordinator(who: &Principal) -> Result<(), Rejection> {
    match who.role {
        Role::Coordinator => Ok(()),
        _ => Err(ApiError::forbidden("only a coordinator manages tokens").into()),
    }
}

/// GET /api/v1/me
async fn me(who: Principal) -> Result<impl Reply, Rejection> {
    Ok(warp::reply::json(
        &serde_json::json!({ "name": who.name, "role": who.role }),
    ))
}

/// GET /api/v1/tokens
async fn list(who: Principal, ctx: Context) -> Result<impl Reply, Rejection> {
    coordinator(&who)?;
    let tokens = read(&ctx, |r| r.tokens()).await?;
    Ok(warp::reply::json(&serde_json::json!({ "tokens": tokens })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    name: String,
    role: String,
    /// Seconds until the token stops working; without it, it lasts until revoked.
    #[serde(default)]
    expires_in_s: Option<i64>,
}

/// The longest a token may be issued for when it expires at all: a year.
const MAX_EXPIRY_S: i64 = 366 * 24 * 3600;

/// An officer's or coordinator's action, for the event log.
fn action(who: &Principal, kind: &str, body: serde_json::Value) -> Write {
    let now = Utc::now();
    Write::Event(LoggedEvent {
        kind: kind.to_owned(),
        device_id: None,
        transit_id: None,
        occurred_at: now,
        detected_at: now,
        late: false,
        actor: Some(who.actor()),
        body,
    })
}

/// POST /api/v1/tokens
async fn create(who: Principal, body: NewToken, ctx: Context) -> Result<impl Reply, Rejection> {
    coordinator(&who)?;
    let role: Role = body
        .role
        .parse()
        .map_err(|e: crate::auth::InvalidRole| ApiError::bad_request(format!("role: {e}")))?;
    role.check(&ctx.atlas)
        .map_err(|e| ApiError::bad_request(format!("role: {e}")))?;
    let name = body.name.trim();
    if name.is_empty() || name.len() > 100 {
        return Err(ApiError::bad_request("name: 1-100 characters").into());
    }
    let expires_at = match body.expires_in_s {
        None => None,
        Some(s) if (60..=MAX_EXPIRY_S).contains(&s) => {
            Some(Utc::now() + chrono::Duration::seconds(s))
        }
        Some(_) => {
            let message = format!("expires_in_s: 60 to {MAX_EXPIRY_S} seconds");
            return Err(ApiError::bad_request(message).into());
        }
    };
    let issued = tokens::issue_until(name, role.clone(), expires_at).map_err(ApiError::internal)?;
    let logged = action(
        &who,
        "token_created",
        serde_json::json!({ "name": name, "role": role }),
    );
    commit(&ctx, vec![issued.write, logged]).await?;
    let body = serde_json::json!({
        "token": issued.text, "name": name, "role": role, "expires_at": expires_at,
    });
    Ok(warp::reply::with_status(
        warp::reply::json(&body),
        StatusCode::CREATED,
    ))
}

/// DELETE /api/v1/tokens/{id}
async fn revoke(id: i64, who: Principal, ctx: Context) -> Result<impl Reply, Rejection> {
    coordinator(&who)?;
    let exists = read(&ctx, move |r| Ok(r.tokens()?.iter().any(|t| t.id == id))).await?;
    if !exists {
        return Err(ApiError::not_found(format!("no token {id}")).into());
    }
    let logged = action(&who, "token_revoked", serde_json::json!({ "token_id": id }));
    commit(
        &ctx,
        vec![Write::RevokeToken { id, at: Utc::now() }, logged],
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub fn routes(ctx: Context) -> BoxedFilter<(warp::reply::Response,)> {
    let v1 = warp::path("api").and(warp::path("v1"));
    let me = v1
        .and(warp::path!("me"))
        .and(warp::get())
        .and(principal(ctx.clone()))
        .and_then(me)
        .map(Reply::into_response);
    let list = v1
        .and(warp::path!("tokens"))
        .and(warp::get())
        .and(principal(ctx.clone()))
        .and(with(ctx.clone()))
        .and_then(list)
        .map(Reply::into_response);
    let create = v1
        .and(warp::path!("tokens"))
        .and(warp::post())
        .and(principal(ctx.clone()))
        .and(warp::body::content_length_limit(MAX_BODY))
        .and(warp::body::json())
        .and(with(ctx.clone()))
        .and_then(create)
        .map(Reply::into_response);
    let revoke = v1
        .and(warp::path!("tokens" / i64))
        .and(warp::delete())
        .and(principal(ctx.clone()))
        .and(with(ctx))
        .and_then(revoke)
        .map(Reply::into_response);
    me.or(list)
        .unify()
        .or(create)
        .unify()
        .or(revoke)
        .unify()
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::bearer;

    #[test]
    fn the_token_comes_from_the_header_only() {
        assert_eq!(bearer(Some("Bearer cvn_ab")).as_deref(), Some("cvn_ab"));
        assert_eq!(bearer(Some("Basic dXNlcg==")), None);
        assert_eq!(bearer(None), None);
    }
}
