//! The HTTP API (warp): one file per resource, one error type, one recover.

mod alerts;
mod allow;
mod auth;
mod credentials;
mod dead_letters;
mod devices;
mod error;
mod evidence;
mod exchange;
mod export;
pub mod gzip;
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
use warp::http::header::{HeaderValue, ACCEPT, ALLOW};
use warp::http::{HeaderMap, StatusCode};
use warp::path::FullPath;
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
    /// The embedded MQTT endpoint's sessions, to disconnect a revoked device at once.
    pub sessions: Option<Arc<crate::endpoint::Sessions>>,
    /// The transit rules in force (built in, or a tuned file), for ETAs.
    pub transit_rules: Arc<crate::transit::rules::TransitRules>,
    /// Signs the evidence checkpoints; its public half is served.
    pub instance_key: Arc<crate::evidence::InstanceKey>,
    /// The maps' index, to place a fix or an event in a country for the jurisdiction rules.
    pub index: Arc<crate::geofence::GeofenceIndex>,
    /// Open streams per token and the tickets that open them.
    pub streams: Arc<stream::Streams>,
    /// The exchange with peer instances (empty when off).
    pub exchange: Arc<crate::exchange::Directory>,
    /// Active or standby: a standby serves reads and refuses writes.
    pub roles: Arc<crate::role::Roles>,
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
        .and(warp::header::optional::<String>("accept"))
        .and_then(service::metrics)
        .map(Reply::into_response);
    // Each resource's routes are boxed: it keeps the filter types (and compile times) small.
    let api = writes_allowed(ctx.clone())
        .and(
            healthz
                .or(metrics)
                .unify()
                .or(openapi::routes())
                .unify()
                .or(auth::routes(ctx.clone()))
                .unify()
                .or(devices::routes(ctx.clone()))
                .unify()
                .or(credentials::routes(ctx.clone()))
                .unify()
                .or(dead_letters::routes(ctx.clone()))
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
                .or(evidence::routes(ctx.clone()))
                .unify()
                .or(exchange::routes(ctx.clone()))
                .unify()
                .or(maps::routes(ctx))
                .unify()
                .or(crate::dashboard::routes())
                .unify(),
        )
        .recover(error::handle_rejection);
    let query = warp::query::raw().or(warp::any().map(String::new)).unify();
    warp::path::full()
        .and(warp::header::headers_cloned())
        .and(query)
        .and(api)
        .then(
            |path: FullPath, headers: HeaderMap, query: String, reply| async move {
                let mut response = warp::Reply::into_response(reply);
                if response.status() == StatusCode::METHOD_NOT_ALLOWED {
                    if let Ok(allow) = HeaderValue::from_str(&allow::methods(path.as_str())) {
                        response.headers_mut().insert(ALLOW, allow);
                    }
                }
                let accept = headers.get(ACCEPT).and_then(|v| v.to_str().ok());
                export::convert(export::Wish::read(accept, &query), path.as_str(), response).await
            },
        )
}

/// Refuses every request that could write (any method but GET, HEAD and OPTIONS) while this
/// instance is not the active one: only the active instance writes to the shared store, and
/// a standby's writes would otherwise wait in a pipeline that never runs. The answer names
/// the active instance when the lease says which it is, so a client or a proxy can go there.
fn writes_allowed(ctx: Context) -> impl Filter<Extract = (), Error = warp::Rejection> + Clone {
    warp::method()
        .and(with(ctx))
        .and_then(|method: warp::http::Method, ctx: Context| async move {
            let reads = [
                warp::http::Method::GET,
                warp::http::Method::HEAD,
                warp::http::Method::OPTIONS,
            ];
            let role = ctx.roles.role();
            if reads.contains(&method) || role.writes() {
                return Ok(());
            }
            let message = match role {
                crate::role::Role::Standby {
                    holder: Some(holder),
                } => format!("not the active instance; the active one is {holder}"),
                _ => "not the active instance".to_owned(),
            };
            Err(warp::reject::custom(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_active",
                message,
            )))
        })
        .untuple_one()
}

/// A query string as `T`, with an error that names the offending parameter. (Tokens never
/// travel in a URL: an `access_token` parameter is an unknown parameter like any other.)
pub(crate) fn query<T: serde::de::DeserializeOwned + Send + 'static>(
) -> impl Filter<Extract = (T,), Error = warp::Rejection> + Clone {
    warp::query::raw()
        .or(warp::any().map(String::new))
        .unify()
        .and_then(|raw: String| async move {
            let kept: Vec<&str> = raw
                .split('&')
                .filter(|pair| !pair.is_empty() && !is_envelope_parameter(pair))
                .collect();
            serde_urlencoded::from_str::<T>(&kept.join("&")).map_err(|e| {
                let message = match culprit::<T>(&kept) {
                    Some(pair) => format!("query parameter {pair}: {e}"),
                    None => format!("query: {e}"),
                };
                warp::reject::custom(ApiError::bad_request(message))
            })
        })
}

/// Parameters that speak about the request itself, not the resource: the export wanted
/// (`format=csv&rows=NAME`, see `export`).
fn is_envelope_parameter(pair: &str) -> bool {
    ["format=", "rows="]
        .iter()
        .any(|prefix| pair.starts_with(prefix))
}

/// The one pair whose removal lets the query parse: the value to name in the error (a
/// deserializer's own message, such as chrono's "input contains invalid characters", does
/// not say which parameter it was reading). Bounded: a query has few pairs.
fn culprit<'a, T: serde::de::DeserializeOwned>(pairs: &[&'a str]) -> Option<&'a str> {
    if pairs.len() > 32 {
        return None;
    }
    (0..pairs.len()).find_map(|skip| {
        let rest: Vec<&str> = pairs
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != skip)
            .map(|(_, pair)| *pair)
            .collect();
        serde_urlencoded::from_str::<T>(&rest.join("&"))
            .is_ok()
            .then_some(pairs[skip])
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

/// Commits `writes` through the pipeline (the store's one writer) and waits until they are
/// stored.
pub(crate) async fn commit(
    ctx: &Context,
    writes: Vec<crate::store::Write>,
) -> Result<(), warp::Rejection> {
    let (reply, committed) = tokio::sync::oneshot::channel();
    let stopping = || ApiError::unavailable("the server is shutting down");
    ctx.pipeline
        .send(crate::pipeline::Input::Store { writes, reply })
        .await
        .map_err(|_| stopping())?;
    committed.await.map_err(|_| stopping().into())
}

/// Serves the API on `listener` until `cancel`, finishing requests in flight.
pub async fn serve(listener: TcpListener, ctx: Context, cancel: CancellationToken) {
    warp::serve(routes(ctx))
        .incoming(listener)
        .graceful(cancel.cancelled_owned())
        .run()
        .await;
}
