//! The maps the engine uses, as GeoJSON, so clients draw exactly what is checked against.

use warp::filters::BoxedFilter;
use warp::{Filter, Rejection, Reply};

use super::auth::principal;
use super::error::ApiError;
use super::{with, Context};
use crate::auth::Principal;
use crate::maps::{self, CountryCode};
use serde::Serialize;

/// URL name to file name.
const LAYERS: [(&str, &str); 5] = [
    ("countries", "countries.geojson"),
    ("bcps", "border-crossings.geojson"),
    ("offices", "customs-offices.geojson"),
    ("corridors", "corridors.geojson"),
    ("coverage-gaps", "coverage-gaps.geojson"),
];

/// GET /api/v1/maps/{layer}
async fn layer(name: String, _who: Principal, ctx: Context) -> Result<impl Reply, Rejection> {
    let Some((_, file)) = LAYERS.iter().find(|(layer, _)| *layer == name) else {
        let names: Vec<_> = LAYERS.iter().map(|(layer, _)| *layer).collect();
        let message = format!("no map layer {name:?}; the layers are {}", names.join(", "));
        return Err(ApiError::not_found(message).into());
    };
    let text = match &ctx.maps_dir {
        Some(dir) => tokio::fs::read_to_string(dir.join(file))
            .await
            .map_err(ApiError::internal)?,
        None => maps::embedded_text(file)
            .ok_or_else(|| ApiError::internal(format!("{file} is not built in")))?
            .to_owned(),
    };
    Ok(warp::reply::with_header(
        text,
        "content-type",
        "application/geo+json",
    ))
}

#[derive(Serialize)]
struct PostView<'a> {
    id: &'a str,
    name: &'a str,
    bcp_id: &'a str,
    bcp_name: &'a str,
    country: CountryCode,
    peer_country: CountryCode,
    corridors: &'a [String],
}

/// GET /api/v1/posts
///
/// Every border post of the maps: public geography, the same for every principal.
async fn posts(_who: Principal, ctx: Context) -> Result<impl Reply, Rejection> {
    let posts: Vec<PostView<'_>> = ctx
        .atlas
        .bcps
        .iter()
        .flat_map(|bcp| {
            bcp.posts.iter().map(move |post| PostView {
                id: &post.id,
                name: &post.name,
                bcp_id: &bcp.id,
                bcp_name: &bcp.name,
                country: post.country,
                peer_country: post.peer_country,
                corridors: &bcp.corridors,
            })
        })
        .collect();
    Ok(warp::reply::json(&serde_json::json!({ "posts": posts })))
}

pub fn routes(ctx: Context) -> BoxedFilter<(warp::reply::Response,)> {
    let layer = warp::path!("api" / "v1" / "maps" / String)
        .and(warp::get())
        .and(principal(ctx.clone()))
        .and(with(ctx.clone()))
        .and_then(layer)
        .map(Reply::into_response);
    let posts = warp::path!("api" / "v1" / "posts")
        .and(warp::get())
        .and(principal(ctx.clone()))
        .and(with(ctx))
        .and_then(posts)
        .map(Reply::into_response);
    layer.or(posts).unify().boxed()
}
