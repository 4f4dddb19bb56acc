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
///
/// OpenMetrics to a scraper that asks for it (Prometheus does), the classic text format to
/// everyone else; each with its own content type.
pub async fn metrics(ctx: Context, accept: Option<String>) -> Result<impl Reply, Infallible> {
    ctx.metrics.observe_historian(&ctx.historian.stats());
    let openmetrics = accept.is_some_and(|a| a.contains("application/openmetrics-text"));
    let (body, content_type) = if openmetrics {
        (
            ctx.metrics.render_openmetrics(),
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )
    } else {
        (
            ctx.metrics.render(),
            "text/plain; version=0.0.4; charset=utf-8",
        )
    };
    Ok(warp::reply::with_header(body, "content-type", content_type))
}
