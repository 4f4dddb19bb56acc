//! Devices: registration, the latest state, and the track.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

use super::auth::principal;
use super::{with, MAX_BODY};

use super::credentials::gateway_username;
use super::error::ApiError;
use super::scope::{self as jurisdiction, country_at};
use super::{read, Context};
use crate::auth::account::{self, device_username, AccountKind};
use crate::auth::{may_register_device, may_see_event, may_see_transit, DeviceSight, Principal};
use crate::device::{Device, DeviceState, Reading, SealState};
use crate::geofence::DeviceGeoState;
use crate::pipeline::{Input, RegisterError};
use crate::store::EventQuery;
use crate::store::NewAccount;
use crate::telemetry::{ConnState, DeviceId, Fix};

/// A device and its latest state, as the API shows it.
#[derive(Serialize)]
pub struct DeviceView {
    #[serde(flatten)]
    device: Device,
    last_seen_at: Option<DateTime<Utc>>,
    position: Option<Fix>,
    seal: Option<SealState>,
    battery_pct: Option<Reading<f64>>,
    ext_power_v: Option<Reading<f64>>,
    gsm_rssi: Option<Reading<f64>>,
    jamming: Option<Reading<bool>>,
    conn: Option<Reading<ConnState>>,
    /// Country, the zones it is inside, and its corridor position.
    geo: Option<DeviceGeoState>,
}

impl DeviceView {
    fn new(device: Device, state: DeviceState) -> Self {
        Self {
            device,
            last_seen_at: state.last_seen_at,
            position: state.position,
            seal: state.seal.map(|s| *s),
            battery_pct: state.battery_pct,
            ext_power_v: state.ext_power_v,
            gsm_rssi: state.gsm_rssi,
            jamming: state.jamming,
            conn: state.conn,
            geo: state.geo.map(|g| *g),
        }
    }
}

fn parse_id(raw: &str) -> Result<DeviceId, Rejection> {
    DeviceId::parse(raw).map_err(|e| ApiError::bad_request(e.to_string()).into())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    after: Option<String>,
    limit: Option<usize>,
}

/// GET /api/v1/devices?after=ID&limit=N
pub async fn list(query: ListQuery, who: Principal, ctx: Context) -> Result<impl Reply, Rejection> {
    let after = query.after.as_deref().map(parse_id).transpose()?;
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let rows = jurisdiction::visible_devices(&who, &ctx, after, limit).await?;
    let next = (rows.len() == limit)
        .then(|| rows.last().map(|(d, _)| d.device_id.clone()))
        .flatten();
    let devices: Vec<_> = rows
        .into_iter()
        .map(|(d, s)| DeviceView::new(d, s))
        .collect();
    Ok(warp::reply::json(
        &serde_json::json!({ "devices": devices, "next": next }),
    ))
}

/// The device, its state as `who` may see it, and the stretch of its history `who` may see,
/// if it exists for `who`; otherwise the same 404.
async fn visible(
    id: &DeviceId,
    who: &Principal,
    ctx: &Context,
) -> Result<(Device, DeviceState, DeviceSight), Rejection> {
    jurisdiction::visible_device(id, who, ctx).await
}

/// GET /api/v1/devices/{id}
pub async fn get(id: String, who: Principal, ctx: Context) -> Result<impl Reply, Rejection> {
    let id = parse_id(&id)?;
    let (device, state, _) = visible(&id, &who, &ctx).await?;
    Ok(warp::reply::json(&DeviceView::new(device, state)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewDevice {
    device_id: String,
    carrier: String,
    plate: Option<String>,
    /// A gateway (firmware-bridge) that may publish for the device.
    gateway: Option<String>,
}

fn valid_carrier(carrier: &str) -> bool {
    let ok = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    (1..=64).contains(&carrier.len()) && carrier.chars().all(ok)
}

/// POST /api/v1/devices
pub async fn create(
    who: Principal,
    body: NewDevice,
    ctx: Context,
) -> Result<impl Reply, Rejection> {
    let device_id = parse_id(&body.device_id)
        .map_err(|_| ApiError::bad_request("device_id: 1-64 characters of A-Z a-z 0-9 _ -"))?;
    if !valid_carrier(&body.carrier) {
        return Err(ApiError::bad_request("carrier: 1-64 characters of A-Z a-z 0-9 _ -").into());
    }
    if !may_register_device(&who, &body.carrier) {
        let message = "only a coordinator or the carrier itself registers its devices";
        return Err(ApiError::forbidden(message).into());
    }
    let plate = body.plate.map(|p| p.trim().to_owned());
    if plate.as_ref().is_some_and(|p| p.is_empty() || p.len() > 20) {
        return Err(ApiError::bad_request("plate: 1-20 characters").into());
    }
    let gateway = body.gateway.as_deref().map(gateway_username).transpose()?;
    let username = device_username(&device_id)
        .map_err(|e| ApiError::bad_request(format!("device_id: {e}")))?;
    let issued = account::issue(AccountKind::Device).map_err(ApiError::internal)?;
    let now = Utc::now();
    let device = Device {
        device_id,
        carrier: body.carrier,
        plate,
        registered_at: now,
    };
    let (reply, registered) = oneshot::channel();
    let input = Input::RegisterDevice {
        actor: who.actor(),
        device: device.clone(),
        account: Some(NewAccount {
            username: username.clone(),
            kind: AccountKind::Device,
            hash: issued.hash,
            gateway,
            created_at: now,
        }),
        reply,
    };
    let stopping = || ApiError::unavailable("the server is shutting down");
    ctx.pipeline.send(input).await.map_err(|_| stopping())?;
    match registered.await.map_err(|_| stopping())? {
        Ok(()) => {
            let view = DeviceView::new(device, DeviceState::default());
            let mut body = serde_json::to_value(&view).map_err(ApiError::internal)?;
            body["credential"] = super::credentials::shown_once(&username, &issued.secret);
            Ok(warp::reply::with_status(
                warp::reply::json(&body),
                StatusCode::CREATED,
            ))
        }
        Err(e @ RegisterError::AlreadyRegistered(_)) => {
            Err(ApiError::conflict(e.to_string()).into())
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackQuery {
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    limit: Option<usize>,
}

/// The most fixes one track request returns; `truncated` says when there were more.
const MAX_TRACK: usize = 50_000;

/// GET /api/v1/devices/{id}/track?from=T&to=T&limit=N (GeoJSON; default: the last 24 hours)
pub async fn track(
    id: String,
    query: TrackQuery,
    who: Principal,
    ctx: Context,
) -> Result<impl Reply, Rejection> {
    let id = parse_id(&id)?;
    let (_, _, sight) = visible(&id, &who, &ctx).await?;
    let to = query.to.unwrap_or_else(Utc::now);
    let from = query.from.unwrap_or(to - Duration::hours(24));
    if from > to {
        return Err(ApiError::bad_request("from must not be after to").into());
    }
    let limit = query.limit.unwrap_or(10_000).clamp(1, MAX_TRACK);
    let lookup = id.clone();
    let mut fixes = read(&ctx, move |r| r.track(&lookup, from, to, limit + 1)).await?;
    let truncated = fixes.len() > limit;
    fixes.truncate(limit);
    // Only the fixes of the stretch `who` may see: nothing of the truck's time elsewhere.
    fixes.retain(|f| sight.shows(f.t, country_at(&ctx, f.point.lat, f.point.lon)));
    Ok(warp::reply::json(&track_geojson(
        &id, from, to, fixes, truncated,
    )))
}

/// A FeatureCollection: the track as a LineString (when it has two fixes or more), then one
/// Point per fix with its time and motion.
fn track_geojson(
    id: &DeviceId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    fixes: Vec<Fix>,
    truncated: bool,
) -> serde_json::Value {
    let coords: Vec<[f64; 2]> = fixes.iter().map(|f| [f.point.lon, f.point.lat]).collect();
    let mut features = Vec::with_capacity(fixes.len() + 1);
    if coords.len() >= 2 {
        features.push(serde_json::json!({
            "type": "Feature",
            "geometry": { "type": "LineString", "coordinates": coords },
            "properties": { "device_id": id, "kind": "track" },
        }));
    }
    for (fix, coord) in fixes.iter().zip(&coords) {
        features.push(serde_json::json!({
            "type": "Feature",
            "geometry": { "type": "Point", "coordinates": coord },
            "properties": {
                "kind": "fix", "seq": fix.seq, "t": fix.t, "speed_kmh": fix.speed_kmh,
                "heading_deg": fix.heading_deg,
            },
        }));
    }
    serde_json::json!({
        "type": "FeatureCollection",
        "features": features,
        "properties": {
            "device_id": id, "from": from, "to": to, "fixes": fixes.len(), "truncated": truncated,
        },
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    after: Option<i64>,
    limit: Option<usize>,
}

/// GET /api/v1/devices/{id}/events?after=ID&limit=N (oldest first; `next` continues)
pub async fn events(
    id: String,
    query: EventsQuery,
    who: Principal,
    ctx: Context,
) -> Result<impl Reply, Rejection> {
    let id = parse_id(&id)?;
    let (_, _, sight) = visible(&id, &who, &ctx).await?;
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let query = EventQuery {
        device_id: Some(id),
        transit_id: None,
        after: query.after,
        limit,
    };
    let (viewer, reader_ctx) = (who.clone(), ctx.clone());
    let (next, events) = read(&ctx, move |r| {
        let events = r.events(&query)?;
        let next = (events.len() == limit)
            .then(|| events.last().map(|e| e.id))
            .flatten();
        let mut transits = std::collections::HashMap::new();
        let mut shown = Vec::with_capacity(events.len());
        for event in events {
            let transit = match &event.transit_id {
                Some(tid) => transits
                    .entry(tid.clone())
                    .or_insert_with(|| r.transit(tid).ok().flatten())
                    .clone(),
                None => None,
            };
            let facts = jurisdiction::facts(&reader_ctx, &event);
            let transit_visible = transit.as_ref().map(|t| may_see_transit(&viewer, t));
            if may_see_event(&viewer, &facts, transit_visible, Some(&sight)) {
                shown.push(event);
            }
        }
        Ok((next, shown))
    })
    .await?;
    Ok(warp::reply::json(
        &serde_json::json!({ "events": events, "next": next }),
    ))
}

pub fn routes(ctx: Context) -> BoxedFilter<(warp::reply::Response,)> {
    let v1 = warp::path("api").and(warp::path("v1"));
    let who = || principal(ctx.clone());
    let list = v1
        .and(warp::path!("devices"))
        .and(warp::get())
        .and(super::query())
        .and(who())
        .and(with(ctx.clone()))
        .and_then(list)
        .map(Reply::into_response);
    let create = v1
        .and(warp::path!("devices"))
        .and(warp::post())
        .and(who())
        .and(warp::body::content_length_limit(MAX_BODY))
        .and(warp::body::json())
        .and(with(ctx.clone()))
        .and_then(create)
        .map(Reply::into_response);
    let get = v1
        .and(warp::path!("devices" / String))
        .and(warp::get())
        .and(who())
        .and(with(ctx.clone()))
        .and_then(get)
        .map(Reply::into_response);
    let track = v1
        .and(warp::path!("devices" / String / "track"))
        .and(warp::get())
        .and(super::query())
        .and(who())
        .and(with(ctx.clone()))
        .and_then(track)
        .map(Reply::into_response);
    let events = v1
        .and(warp::path!("devices" / String / "events"))
        .and(warp::get())
        .and(super::query())
        .and(who())
        .and(with(ctx.clone()))
        .and_then(events)
        .map(Reply::into_response);
    list.or(create)
        .unify()
        .or(get)
        .unify()
        .or(track)
        .unify()
        .or(events)
        .unify()
        .boxed()
}
