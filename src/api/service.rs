//! The service's own endpoints: health and metrics.

use std::convert::Infallible;

use warp::http::StatusCode;
use warp::Reply;

use super::Context;
use crate::historian::HistorianStats;

/// GET /healthz
pub async fn healthz(ctx: Context) -> Result<warp::reply::Response, Infallible> {
    let reader = ctx.reader.clone();
    let ping = match tokio::task::spawn_blocking(move || reader.ping()).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(e) => Some(e.to_string()),
    };
    let mut report = ctx.health.report();
    report.historian = historian_state(&ctx.historian.stats());
    if let Some(problem) = ping {
        report.store = format!("failing: {problem}");
        report.status = "degraded";
    }
    let status = if report.status == "ok" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok(warp::reply::with_status(warp::reply::json(&report), status).into_response())
}

/// The historian never makes Caravan unhealthy (it spills to disk), but its state is shown.
fn historian_state(stats: &HistorianStats) -> String {
    match (stats.enabled, stats.up, &stats.last_error) {
        (false, _, _) => "off".into(),
        (true, true, _) => "ok".into(),
        (true, false, Some(e)) => format!("spilling: {e}"),
        (true, false, None) => "spilling".into(),
    }
}

/// GET /metrics
pub async fn metrics(ctx: Context) -> Result<impl Reply, Infallible> {
    ctx.metrics.observe_historian(&ctx.historian.stats());
    Ok(warp::reply::with_header(
        ctx.metrics.render(),
        "content-type",
        "text/plain; version=0.0.4; charset=utf-8",
    ))
}
