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
    let role = ctx.roles.role();
    if let crate::role::Role::Standby { .. } = role {
        // A standby consumes nothing: no broker connection and no tracking state are its
        // health. It is healthy when it can serve reads and take over.
        report.broker = "standby";
        report.tracking = "standby";
        report.status = "ok";
    }
    if let crate::role::Role::Lost { .. } = role {
        report.status = "degraded";
    }
    if let Some(problem) = ping {
        report.store = format!("failing: {problem}");
        report.status = "degraded";
    }
    let status = if report.status == "ok" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut body = serde_json::to_value(&report).unwrap_or_default();
    // A peer that is down is the exchange's problem, not this instance's: it is reported
    // here but does not make the instance unhealthy (its messages wait in the outbox).
    body["exchange"] = exchange_state(&ctx.exchange);
    body["role"] = role.name().into();
    body["epoch"] = role.epoch().into();
    Ok(warp::reply::with_status(warp::reply::json(&body), status).into_response())
}

/// `off`, or each peer's outbox depth, age and reachability, and the first trouble.
fn exchange_state(exchange: &crate::exchange::Directory) -> serde_json::Value {
    if !exchange.is_on() {
        return serde_json::json!({ "status": "off" });
    }
    let peers = exchange.status.snapshot();
    let status = exchange.status.trouble().unwrap_or_else(|| "ok".into());
    serde_json::json!({ "status": status, "peers": peers })
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
