//! The maps the engine uses, as GeoJSON, so clients draw exactly what is checked against.

use warp::filters::BoxedFilter;
use warp::{Filter, Rejection, Reply};

use super::auth::principal;
use super::error::ApiError;
use super::{with, Context};
use crate::auth::Principal;
use crate::maps;

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
    Ok(warp::reply::with_header(text, "content-type", "application/geo+json"))
}

pub fn routes(ctx: Context) -> BoxedFilter<(warp::reply::Response,)> {
    warp::path!("api" / "v1" / "maps" / String)
        .and(warp::get())
        .and(principal(ctx.clone()))
        .and(with(ctx))
        .and_then(layer)
        .map(Reply::into_response)
        .boxed()
}
