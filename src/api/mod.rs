//! The HTTP API (warp): one file per resource, one error type, one recover.

mod alerts;
mod auth;
mod devices;
mod error;
mod maps;
mod openapi;
mod posts;
mod scope;
mod service;
mod stats;
mod stream;
mod transits;

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use warp::{Filter, Reply};

pub use error::ApiError;
pub use stream::Streams;

use crate::health::Health;
use crate::historian::Historian;
use crate::metrics::Metrics;
use crate::pipeline::Input;
use crate::store::StoreReader;

/// What every handler may use. Cheap to clone.
#[derive(Clone)]
pub struct Context {
    pub reader: Arc<dyn StoreReader>,
    pub pipeline: mpsc::Sender<Input>,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    pub historian: Historian,
    /// What the committer announces, for the event stream.
    pub live: tokio::sync::broadcast::Sender<crate::live::Live>,
    /// Where the maps were loaded from; `None` for the built-in ones.
    pub maps_dir: Option<std::path::PathBuf>,
    /// The maps themselves, for the routes that describe places.
    pub atlas: Arc<crate::maps::Atlas>,
    /// The maps' index, to place a fix or an event in a country for the jurisdiction rules.
    pub index: Arc<crate::geofence::GeofenceIndex>,
    /// Open streams per token and the tickets that open them.
    pub streams: Arc<stream::Streams>,
}

/// Request bodies above this are refused before they are read.
const MAX_BODY: u64 = 64 * 1024;

fn with(
    ctx: Context,
) -> impl Filter<Extract = (Context,), Error = std::convert::Infallible> + Clone {
    warp::any().map(move || ctx.clone())
}

pub fn routes(
    ctx: Context,
) -> impl Filter<Extract = (impl Reply,), Error = std::convert::Infallible> + Clone {
    let healthz = warp::path!("healthz")
        .and(warp::get())
        .and(with(ctx.clone()))
        .and_then(service::healthz)
        .map(Reply::into_response);
    let metrics = warp::path!("metrics")
        .and(warp::get())
        .and(with(ctx.clone()))
        .and_then(service::metrics)
        .map(Reply::into_response);
    // Each resource's routes are boxed: it keeps the filter types (and compile times) small.
    healthz
        .or(metrics)
        .unify()
        .or(openapi::routes())
        .unify()
        .or(auth::routes(ctx.clone()))
        .unify()
        .or(devices::routes(ctx.clone()))
        .unify()
        .or(transits::routes(ctx.clone()))
        .unify()
        .or(alerts::routes(ctx.clone()))
        .unify()
        .or(posts::routes(ctx.clone()))
        .unify()
        .or(stats::routes(ctx.clone()))
        .unify()
        .or(stream::routes(ctx.clone()))
        .unify()
        .or(maps::routes(ctx))
        .unify()
        .or(crate::dashboard::routes())
        .unify()
        .recover(error::handle_rejection)
}

/// A query string as `T`, with an error that names the offending parameter. (Tokens never
/// travel in a URL: an `access_token` parameter is an unknown parameter like any other.)
pub(crate) fn query<T: serde::de::DeserializeOwned + Send + 'static>(
) -> impl Filter<Extract = (T,), Error = warp::Rejection> + Clone {
    warp::query::raw()
        .or(warp::any().map(String::new))
        .unify()
        .and_then(|raw: String| async move {
            serde_urlencoded::from_str::<T>(&raw)
                .map_err(|e| warp::reject::custom(ApiError::bad_request(format!("query: {e}"))))
        })
}

/// Runs a blocking store read off the async threads.
pub(crate) async fn read<T: Send + 'static>(
    ctx: &Context,
    f: impl FnOnce(&dyn StoreReader) -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Result<T, warp::Rejection> {
    let reader = ctx.reader.clone();
    tokio::task::spawn_blocking(move || f(reader.as_ref()))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| ApiError::internal(e).into())
}

/// Serves the API on `listener` until `cancel`, finishing requests in flight.
pub async fn serve(listener: TcpListener, ctx: Context, cancel: CancellationToken) {
    warp::serve(routes(ctx))
        .incoming(listener)
        .graceful(cancel.cancelled_owned())
        .run()
        .await;
}
