//! Evidence for other authorities: the instance's public key, and a transit's evidence
//! bundle for those who may see the transit (the same principals as its view, which already
//! shows them every alert and inspection the bundle holds).

use warp::filters::BoxedFilter;
use warp::http::header;
use warp::{Filter, Rejection, Reply};

use super::auth::principal;
use super::error::ApiError;
use super::transits::{now, visible};
use super::{with, Context};
use crate::auth::Principal;
use crate::evidence::bundle;

/// GET /api/v1/evidence/key
async fn key(_who: Principal, ctx: Context) -> Result<impl Reply, Rejection> {
    Ok(warp::reply::json(&serde_json::json!({
        "algorithm": "ed25519",
        "public_key": ctx.instance_key.public_hex(),
        "fingerprint": ctx.instance_key.fingerprint(),
    })))
}

/// GET /api/v1/transits/{id}/evidence (the bundle, as a file to keep)
async fn transit_bundle(id: String, who: Principal, ctx: Context) -> Result<impl Reply, Rejection> {
    visible(id.clone(), &who, &ctx).await?;
    let reader = ctx.reader.clone();
    let key = ctx.instance_key.clone();
    let shown = id.clone();
    let made =
        tokio::task::spawn_blocking(move || bundle::export(reader.as_ref(), &key, &id, now()))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::internal)?;
    let Some(b) = made else {
        return Err(ApiError::not_found(format!("no transit {shown}")).into());
    };
    let body = serde_json::to_vec(&b).map_err(ApiError::internal)?;
    let name = format!(
        "attachment; filename=\"evidence-{}.json\"",
        shown.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_")
    );
    Ok(warp::http::Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_DISPOSITION, name)
        .body(body)
        .map_err(ApiError::internal)?)
}

/// GET /api/v1/transits/{id}/evidence/check (the bundle cut now, checked against this
/// instance's own key): the view against its rebuild from the log, every proof against the
/// store. (An authority elsewhere checks the downloaded file with `verify-bundle`.)
async fn check(id: String, who: Principal, ctx: Context) -> Result<impl Reply, Rejection> {
    visible(id.clone(), &who, &ctx).await?;
    let reader = ctx.reader.clone();
    let key = ctx.instance_key.clone();
    let shown = id.clone();
    let verdict = tokio::task::spawn_blocking(move || {
        let made = bundle::export(reader.as_ref(), &key, &id, now())?;
        let public = crate::evidence::key::parse_public(&key.public_hex());
        Ok::<_, crate::store::StoreError>(made.zip(public).map(|(b, k)| bundle::verify(&b, &k)))
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?
    .ok_or_else(|| ApiError::not_found(format!("no transit {shown}")))?;
    let mut body = serde_json::to_value(&verdict).map_err(ApiError::internal)?;
    body["holds"] = verdict.holds().into();
    Ok(warp::reply::json(&body))
}

pub fn routes(ctx: Context) -> BoxedFilter<(warp::reply::Response,)> {
    let key = warp::path!("api" / "v1" / "evidence" / "key")
        .and(warp::get())
        .and(principal(ctx.clone()))
        .and(with(ctx.clone()))
        .and_then(key)
        .map(Reply::into_response);
    let bundle = warp::path!("api" / "v1" / "transits" / String / "evidence")
        .and(warp::get())
        .and(principal(ctx.clone()))
        .and(with(ctx.clone()))
        .and_then(transit_bundle)
        .map(Reply::into_response);
    let checked = warp::path!("api" / "v1" / "transits" / String / "evidence" / "check")
        .and(warp::get())
        .and(principal(ctx.clone()))
        .and(with(ctx))
        .and_then(check)
        .map(Reply::into_response);
    key.or(bundle).unify().or(checked).unify().boxed()
}
