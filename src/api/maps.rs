//! The maps the engine uses, as GeoJSON, so clients draw exactly what is checked against.

use std::sync::OnceLock;

use bytes::Bytes;
use warp::filters::BoxedFilter;
use warp::http::header::{ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_TYPE, VARY};
use warp::http::HeaderValue;
use warp::{Filter, Rejection, Reply};

use super::auth::principal;
use super::error::ApiError;
use super::gzip;
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
///
/// gzipped when the client accepts it: the built-in layers are compressed once and kept, a
/// layer from a maps folder on each request (it may have been edited).
async fn layer(
    name: String,
    accept_encoding: Option<String>,
    _who: Principal,
    ctx: Context,
) -> Result<warp::reply::Response, Rejection> {
    let Some(index) = LAYERS.iter().position(|(layer, _)| *layer == name) else {
        let names: Vec<_> = LAYERS.iter().map(|(layer, _)| *layer).collect();
        let message = format!("no map layer {name:?}; the layers are {}", names.join(", "));
        return Err(ApiError::not_found(message).into());
    };
    let file = LAYERS[index].1;
    let wants_gzip = gzip::accepted(accept_encoding.as_deref());
    let (body, gzipped) = match &ctx.maps_dir {
        Some(dir) => {
            let text = tokio::fs::read(dir.join(file))
                .await
                .map_err(ApiError::internal)?;
            if wants_gzip && text.len() >= gzip::MIN_SIZE {
                let packed = tokio::task::spawn_blocking(move || gzip::compress(&text))
                    .await
                    .map_err(ApiError::internal)?;
                (Bytes::from(packed), true)
            } else {
                (Bytes::from(text), false)
            }
        }
        None => {
            let text = maps::embedded_text(file)
                .ok_or_else(|| ApiError::internal(format!("{file} is not built in")))?;
            match wants_gzip.then(|| embedded_gzipped(index, text)).flatten() {
                Some(packed) => (packed, true),
                None => (Bytes::from_static(text.as_bytes()), false),
            }
        }
    };
    let mut response = warp::reply::Response::new(body.into());
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/geo+json"),
    );
    headers.insert(VARY, HeaderValue::from_static("accept-encoding"));
    if gzipped {
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    Ok(response)
}

/// The built-in layer at `index` of [`LAYERS`] gzipped, compressed on first use and kept.
fn embedded_gzipped(index: usize, text: &'static str) -> Option<Bytes> {
    static GZIPPED: OnceLock<Vec<OnceLock<Option<Bytes>>>> = OnceLock::new();
    let all = GZIPPED.get_or_init(|| LAYERS.iter().map(|_| OnceLock::new()).collect());
    all.get(index)?
        .get_or_init(|| {
            (text.len() >= gzip::MIN_SIZE).then(|| Bytes::from(gzip::compress(text.as_bytes())))
        })
        .clone()
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
        .and(warp::header::optional::<String>(ACCEPT_ENCODING.as_str()))
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
