//! The HTTP API (warp): one file per resource, one error type, one recover.

mod devices;
mod error;
mod service;

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use warp::{Filter, Reply};

pub use error::ApiError;

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
        .and_then(service::healthz);
    let metrics = warp::path!("metrics")
        .and(warp::get())
        .and(with(ctx.clone()))
        .and_then(service::metrics);
    let v1 = warp::path("api").and(warp::path("v1"));
    let list = v1
        .and(warp::path!("devices"))
        .and(warp::get())
        .and(warp::query())
        .and(with(ctx.clone()))
        .and_then(devices::list);
    let create = v1
        .and(warp::path!("devices"))
        .and(warp::post())
        .and(warp::body::content_length_limit(MAX_BODY))
        .and(warp::body::json())
        .and(with(ctx.clone()))
        .and_then(devices::create);
    let get = v1
        .and(warp::path!("devices" / String))
        .and(warp::get())
        .and(with(ctx.clone()))
        .and_then(devices::get);
    let track = v1
        .and(warp::path!("devices" / String / "track"))
        .and(warp::get())
        .and(warp::query())
        .and(with(ctx.clone()))
        .and_then(devices::track);
    let events = v1
        .and(warp::path!("devices" / String / "events"))
        .and(warp::get())
        .and(warp::query())
        .and(with(ctx))
        .and_then(devices::events);
    healthz
        .or(metrics)
        .or(list)
        .or(create)
        .or(get)
        .or(track)
        .or(events)
        .recover(error::handle_rejection)
}

/// Serves the API on `listener` until `cancel`, finishing requests in flight.
pub async fn serve(listener: TcpListener, ctx: Context, cancel: CancellationToken) {
    warp::serve(routes(ctx))
        .incoming(listener)
        .graceful(cancel.cancelled_owned())
        .run()
        .await;
}
