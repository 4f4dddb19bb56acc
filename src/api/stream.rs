//! `GET /api/v1/stream`: live events as server-sent events, filtered by the caller's scope.
//!
//! Each connection gets a task that first replays the event log after `Last-Event-ID` (so a
//! dashboard that reconnects misses nothing), then follows the committer's announcements.
//! Device positions are sent too, without an id: they are state, not history.

use std::collections::HashMap;
use std::convert::Infallible;

use futures_util::StreamExt;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use warp::filters::BoxedFilter;
use warp::sse::Event;
use warp::{Filter, Rejection, Reply};

use super::auth::principal;
use super::{read, transits, with, Context};
use crate::auth::{may_see_device, Principal, Role};
use crate::device::{Device, DeviceState};
use crate::live::Live;
use crate::store::{EventQuery, LoggedEvent, StoredEvent};
use crate::telemetry::DeviceId;

/// Events replayed per store read while catching up.
const REPLAY_PAGE: usize = 500;

/// GET /api/v1/stream
async fn stream(
    who: Principal,
    last_id: Option<i64>,
    ctx: Context,
) -> Result<impl Reply, Rejection> {
    // Subscribe before replaying, so nothing committed in between is lost.
    let live = ctx.live.subscribe();
    let (tx, rx) = mpsc::channel(256);
    tokio::spawn(feed(who, last_id, live, ctx, tx));
    let events = ReceiverStream::new(rx).map(Ok::<_, Infallible>);
    Ok(warp::sse::reply(warp::sse::keep_alive().stream(events)))
}

/// What one connection may see: devices and transits are looked up once and remembered.
struct Scope {
    who: Principal,
    devices: HashMap<DeviceId, Option<(Device, DeviceState)>>,
    transits: HashMap<String, bool>,
}

impl Scope {
    async fn device_visible(
        &mut self,
        id: &DeviceId,
        state: Option<&DeviceState>,
        ctx: &Context,
    ) -> bool {
        if self.who.role == Role::Coordinator {
            return true;
        }
        if !self.devices.contains_key(id) {
            let lookup = id.clone();
            let found = read(ctx, move |r| r.device(&lookup)).await.ok().flatten();
            self.devices.insert(id.clone(), found);
        }
        let Some(Some((device, known))) = self.devices.get_mut(id) else {
            return false;
        };
        if let Some(state) = state {
            *known = state.clone();
        }
        may_see_device(&self.who, device, known)
    }

    /// A transit's records follow the transit's jurisdiction; a device's, the device's.
    async fn event_visible(&mut self, event: &LoggedEvent, ctx: &Context) -> bool {
        if self.who.role == Role::Coordinator {
            return true;
        }
        if let Some(transit_id) = &event.transit_id {
            if let Some(visible) = self.transits.get(transit_id) {
                return *visible;
            }
            let lookup = transit_id.clone();
            let found = read(ctx, move |r| r.transit(&lookup)).await.ok().flatten();
            let visible = found.is_some_and(|t| transits::may_see(&self.who, &t));
            self.transits.insert(transit_id.clone(), visible);
            return visible;
        }
        match &event.device_id {
            Some(id) => self.device_visible(id, None, ctx).await,
            None => false,
        }
    }
}

fn event_message(stored: &StoredEvent) -> Event {
    Event::default()
        .id(stored.id.to_string())
        .event(stored.kind.clone())
        .data(serde_json::to_string(stored).unwrap_or_default())
}

fn stored(id: i64, e: &LoggedEvent) -> StoredEvent {
    StoredEvent {
        id,
        kind: e.kind.clone(),
        device_id: e.device_id.as_ref().map(ToString::to_string),
        transit_id: e.transit_id.clone(),
        occurred_at: e.occurred_at,
        detected_at: e.detected_at,
        late: e.late,
        actor: e.actor.clone(),
        body: e.body.clone(),
        hash: String::new(),
    }
}

async fn feed(
    who: Principal,
    last_id: Option<i64>,
    mut live: broadcast::Receiver<Live>,
    ctx: Context,
    tx: mpsc::Sender<Event>,
) {
    let mut scope = Scope {
        who,
        devices: HashMap::new(),
        transits: HashMap::new(),
    };
    let mut seen = last_id.unwrap_or(0);
    if last_id.is_some() {
        match replay(&mut scope, seen, &ctx, &tx).await {
            Some(last) => seen = last,
            None => return,
        }
    }
    loop {
        let message = match live.recv().await {
            Ok(Live::Event { id, event }) => {
                if id <= seen || !scope.event_visible(&event, &ctx).await {
                    continue;
                }
                seen = id;
                event_message(&stored(id, &event))
            }
            Ok(Live::Device { device_id, state }) => {
                if !scope.device_visible(&device_id, Some(&state), &ctx).await {
                    continue;
                }
                let data = json!({
                    "device_id": device_id, "last_seen_at": state.last_seen_at,
                    "position": state.position, "seal": state.seal, "geo": state.geo,
                    "battery_pct": state.battery_pct,
                });
                Event::default().event("position").data(data.to_string())
            }
            Err(RecvError::Lagged(missed)) => {
                let data = json!({ "missed": missed, "last_event_id": seen });
                Event::default().event("resync").data(data.to_string())
            }
            Err(RecvError::Closed) => return,
        };
        if tx.send(message).await.is_err() {
            return;
        }
    }
}

/// Sends the visible events after `after` from the store; `None` when the client left.
async fn replay(
    scope: &mut Scope,
    mut after: i64,
    ctx: &Context,
    tx: &mpsc::Sender<Event>,
) -> Option<i64> {
    loop {
        let query = EventQuery {
            after: Some(after),
            limit: REPLAY_PAGE,
            ..EventQuery::default()
        };
        let page = read(ctx, move |r| r.events(&query)).await.ok()?;
        let done = page.len() < REPLAY_PAGE;
        for event in page {
            after = event.id;
            let logged = LoggedEvent {
                kind: event.kind.clone(),
                device_id: event
                    .device_id
                    .as_deref()
                    .and_then(|d| DeviceId::parse(d).ok()),
                transit_id: event.transit_id.clone(),
                occurred_at: event.occurred_at,
                detected_at: event.detected_at,
                late: event.late,
                actor: None,
                body: serde_json::Value::Null,
            };
            if scope.event_visible(&logged, ctx).await {
                tx.send(event_message(&event)).await.ok()?;
            }
        }
        if done {
            return Some(after);
        }
    }
}

pub fn routes(ctx: Context) -> BoxedFilter<(warp::reply::Response,)> {
    warp::path!("api" / "v1" / "stream")
        .and(warp::get())
        .and(principal(ctx.clone()))
        .and(warp::sse::last_event_id::<i64>())
        .and(with(ctx))
        .and_then(stream)
        .map(Reply::into_response)
        .boxed()
}
