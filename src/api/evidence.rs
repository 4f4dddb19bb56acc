//! The instance's public key, so another authority can check its signed checkpoints.

use warp::filters::BoxedFilter;
use warp::{Filter, Rejection, Reply};

use super::auth::principal;
use super::{with, Context};
use crate::auth::Principal;

/// GET /api/v1/evidence/key
async fn key(_who: Principal, ctx: Context) -> Result<impl Reply, Rejection> {
    Ok(warp::reply::json(&serde_json::json!({
        "algorithm": "ed25519",
        "public_key": ctx.instance_key.public_hex(),
        "fingerprint": ctx.instance_key.fingerprint(),
    })))
}

pub fn routes(ctx: Context) -> BoxedFilter<(warp::reply::Response,)> {
    warp::path!("api" / "v1" / "evidence" / "key")
        .and(warp::get())
        .and(principal(ctx.clone()))
        .and(with(ctx))
        .and_then(key)
        .map(Reply::into_response)
        .boxed()
}
