//! `GET /api/v1/stream`: live events as server-sent events, filtered by the caller's scope.
//!
//! Each connection gets a task that first replays the event log after `Last-Event-ID` (so a
//! dashboard that reconnects misses nothing), then follows the committer's announcements.
//! Device positions are sent too, without an id: they are state, not history.
//!
//! Bounded: a token holds at most [`MAX_STREAMS_PER_TOKEN`] streams at once, a replay reads
//! at most [`MAX_REPLAY`] events (further back, the client is told to resynchronise), a
//! connection queues at most [`QUEUE`] messages, and its task ends as soon as the client goes
//! away, whether or not anything happens. A browser's `EventSource` cannot send headers, so
//! it opens its stream with a ticket (`POST /api/v1/stream/ticket`): single use, valid for
//! [`TICKET_TTL_S`] seconds, good for nothing else; tokens never travel in a URL.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::sse::Event;
use warp::{Filter, Rejection, Reply};

use super::auth::principal;
use super::error::ApiError;
use super::scope::{self as jurisdiction, event_country};
use super::{read, with, Context};
use crate::auth::{
    may_see_event, may_see_transit, token, DeviceSight, EventFacts, Principal, Role,
};
use crate::device::DeviceState;
use crate::live::Live;
use crate::store::{EventQuery, LoggedEvent, StoredEvent};
use crate::telemetry::DeviceId;
use crate::transit::Transit;

/// Events replayed per store read while catching up. A connection whose client does not
/// read holds one page, so it is small.
const REPLAY_PAGE: usize = 50;
/// The most events one replay reads; a client further behind is told to resynchronise.
pub const MAX_REPLAY: usize = 5_000;
/// Streams one token may hold open at once.
pub const MAX_STREAMS_PER_TOKEN: usize = 8;
/// Streams the server holds at once, all tokens together. A client that does not read holds
/// up to about 400 KiB in the HTTP layer's write buffer, so this bounds that memory too.
pub const MAX_STREAMS: usize = 1_000;
/// Messages queued for one connection; a client that reads slower waits the feed.
const QUEUE: usize = 32;
/// How long a stream ticket is valid.
pub const TICKET_TTL_S: i64 = 60;
/// Unused tickets kept at most (expired ones are dropped first).
const MAX_TICKETS: usize = 10_000;
/// A comment this often keeps proxies from closing a quiet stream, and lets the server notice
/// a client that went away (and give its slot back) within this time.
const KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(5);
/// Transits and devices one connection remembers before it forgets them all.
const MAX_REMEMBERED: usize = 4_096;

/// Open streams per token, and the tickets that open streams.
#[derive(Default)]
pub struct Streams {
    open: Mutex<HashMap<i64, usize>>,
    tickets: Mutex<HashMap<String, (Principal, DateTime<Utc>)>>,
}

/// One open stream, counted against its token until dropped.
struct Slot {
    streams: Arc<Streams>,
    token_id: i64,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.streams.open.lock() {
            if let Some(n) = open.get_mut(&self.token_id) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    open.remove(&self.token_id);
                }
            }
        }
    }
}

impl Streams {
    /// A slot for one more stream of `token_id`, unless the token or the server is full.
    fn take_slot(self: &Arc<Self>, token_id: i64) -> Result<Slot, ApiError> {
        let busy = || ApiError::unavailable("the stream table is unavailable");
        let mut open = self.open.lock().map_err(|_| busy())?;
        if open.values().sum::<usize>() >= MAX_STREAMS {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "too_many_streams",
                format!("the server holds its maximum of {MAX_STREAMS} streams; poll instead"),
            ));
        }
        let n = open.entry(token_id).or_insert(0);
        if *n >= MAX_STREAMS_PER_TOKEN {
            let message = format!("at most {MAX_STREAMS_PER_TOKEN} open streams per token");
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_streams",
                message,
            ));
        }
        *n += 1;
        Ok(Slot {
            streams: self.clone(),
            token_id,
        })
    }

    /// Streams open now (all tokens).
    pub fn open_count(&self) -> usize {
        self.open.lock().map(|o| o.values().sum()).unwrap_or(0)
    }

    fn issue(
        &self,
        who: Principal,
        now: DateTime<Utc>,
    ) -> Result<(String, DateTime<Utc>), ApiError> {
        let text = token::generate().map_err(ApiError::internal)?;
        let ticket = format!("cvt_{}", text.trim_start_matches("cvn_"));
        let expires = now + Duration::seconds(TICKET_TTL_S);
        let mut tickets = self
            .tickets
            .lock()
            .map_err(|_| ApiError::internal("ticket table poisoned"))?;
        tickets.retain(|_, (_, until)| *until > now);
        if tickets.len() >= MAX_TICKETS {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_tickets",
                "too many unused stream tickets; try again in a minute",
            ));
        }
        tickets.insert(token::hash(&ticket), (who, expires));
        Ok((ticket, expires))
    }

    /// The principal of a valid ticket, which is used up.
    fn redeem(&self, ticket: &str, now: DateTime<Utc>) -> Option<Principal> {
        let mut tickets = self.tickets.lock().ok()?;
        let (who, until) = tickets.remove(&token::hash(ticket))?;
        (until > now).then_some(who)
    }
}

/// POST /api/v1/stream/ticket
async fn ticket(who: Principal, ctx: Context) -> Result<impl Reply, Rejection> {
    let (ticket, expires_at) = ctx.streams.issue(who, Utc::now())?;
    let body = json!({ "ticket": ticket, "expires_at": expires_at });
    Ok(warp::reply::with_status(
        warp::reply::json(&body),
        StatusCode::CREATED,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StreamQuery {
    ticket: Option<String>,
}

/// The caller of a stream: a bearer header, or else a ticket.
async fn caller(
    header: Option<String>,
    query: StreamQuery,
    ctx: Context,
) -> Result<Principal, Rejection> {
    if let Some(header) = header {
        return super::auth::authenticate(Some(header), ctx).await;
    }
    let unauthorized =
        || ApiError::unauthorized("send a token (Authorization: Bearer) or a stream ticket");
    let ticket = query.ticket.ok_or_else(unauthorized)?;
    ctx.streams
        .redeem(&ticket, Utc::now())
        .ok_or_else(|| unauthorized().into())
}

/// GET /api/v1/stream
async fn stream(
    who: Principal,
    last_id: Option<i64>,
    ctx: Context,
) -> Result<impl Reply, Rejection> {
    let slot = ctx.streams.take_slot(who.token_id)?;
    // Subscribe before replaying, so nothing committed in between is lost.
    let live = ctx.live.subscribe();
    let (tx, rx) = mpsc::channel(QUEUE);
    let feed = feed(who, last_id, live, ctx, tx.clone());
    tokio::spawn(async move {
        let _slot = slot;
        // The feed may wait a long time for something to send; a client that left ends it.
        tokio::select! {
            () = feed => {}
            () = tx.closed() => {}
        }
    });
    let events = ReceiverStream::new(rx).map(Ok::<_, Infallible>);
    let keep_alive = warp::sse::keep_alive().interval(KEEP_ALIVE);
    Ok(warp::sse::reply(keep_alive.stream(events)))
}

/// What one connection remembers of a transit: whether it sees it, and its devices. (Not
/// the transit itself: a transit with its route is tens of kilobytes, and thousands of
/// connections each holding every transit they met was most of the memory streams took.)
struct Seen {
    visible: bool,
    devices: Vec<DeviceId>,
}

/// What one connection may see: transits and device sights are looked up once and
/// remembered (a declaration or a status change forgets the device sights it may change).
struct Scope {
    who: Principal,
    devices: HashMap<DeviceId, Option<DeviceSight>>,
    transits: HashMap<String, Option<Seen>>,
}

impl Scope {
    fn forget_if_full(&mut self) {
        if self.devices.len() > MAX_REMEMBERED {
            self.devices.clear();
        }
        if self.transits.len() > MAX_REMEMBERED {
            self.transits.clear();
        }
    }

    async fn sight(&mut self, id: &DeviceId, ctx: &Context) -> Option<DeviceSight> {
        if self.who.role == Role::Coordinator {
            return None;
        }
        self.forget_if_full();
        if !self.devices.contains_key(id) {
            let (lookup, who) = (id.clone(), self.who.clone());
            let found = read(ctx, move |r| {
                let Some((device, _)) = r.device(&lookup)? else {
                    return Ok(None);
                };
                jurisdiction::sight(r, &who, &device).map(Some)
            })
            .await
            .ok()
            .flatten();
            self.devices.insert(id.clone(), found);
        }
        self.devices.get(id).cloned().flatten()
    }

    async fn transit(&mut self, id: &str, ctx: &Context) -> Option<&Seen> {
        self.forget_if_full();
        if !self.transits.contains_key(id) {
            let (lookup, who) = (id.to_owned(), self.who.clone());
            let found = read(ctx, move |r| {
                Ok(r.transit(&lookup)?.map(|t: Transit| Seen {
                    visible: may_see_transit(&who, &t),
                    devices: t
                        .devices
                        .iter()
                        .chain(t.seals.iter().filter_map(|s| s.device_id.as_ref()))
                        .cloned()
                        .collect(),
                }))
            })
            .await
            .ok()
            .flatten();
            self.transits.insert(id.to_owned(), found);
        }
        self.transits.get(id).and_then(Option::as_ref)
    }

    /// Whether a device's position is shown: the device is visible and the fix lies in the
    /// stretch of its history the principal sees.
    async fn position_visible(
        &mut self,
        id: &DeviceId,
        state: &DeviceState,
        ctx: &Context,
    ) -> bool {
        if self.who.role == Role::Coordinator {
            return true;
        }
        let Some(sight) = self.sight(id, ctx).await else {
            return false;
        };
        let here = jurisdiction::now_in(ctx, state);
        let Some(fix) = state.position.as_ref() else {
            return false;
        };
        sight.device_visible(here) && sight.shows(fix.t, here)
    }

    async fn event_visible(&mut self, event: &LoggedEvent, ctx: &Context) -> bool {
        if self.who.role == Role::Coordinator {
            return true;
        }
        let (transit_visible, carried) = match &event.transit_id {
            Some(id) => match self.transit(id, ctx).await {
                Some(seen) => (Some(seen.visible), seen.devices.clone()),
                None => (None, Vec::new()),
            },
            None => (None, Vec::new()),
        };
        // A declaration or a close changes which stretch of its devices' history is seen.
        if matches!(
            event.kind.as_str(),
            "transit.declared" | "transit.status_changed"
        ) {
            self.devices.retain(|id, _| !carried.contains(id));
        }
        let sight = match (&event.transit_id, &event.device_id) {
            (None, Some(id)) => self.sight(id, ctx).await,
            _ => None,
        };
        let facts = EventFacts {
            kind: &event.kind,
            of_transit: event.transit_id.is_some(),
            occurred_at: event.occurred_at,
            country: event_country(ctx, &event.body),
            body: &event.body,
        };
        may_see_event(&self.who, &facts, transit_visible, sight.as_ref())
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

fn logged(event: StoredEvent) -> LoggedEvent {
    LoggedEvent {
        kind: event.kind,
        device_id: event
            .device_id
            .as_deref()
            .and_then(|d| DeviceId::parse(d).ok()),
        transit_id: event.transit_id,
        occurred_at: event.occurred_at,
        detected_at: event.detected_at,
        late: event.late,
        actor: event.actor,
        body: event.body,
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
                if !scope.position_visible(&device_id, &state, &ctx).await {
                    continue;
                }
                let data = json!({
                    "device_id": device_id, "last_seen_at": state.last_seen_at,
                    "position": state.position, "seal": state.seal, "geo": state.geo,
                    "battery_pct": state.battery_pct,
                });
                Event::default().event("position").data(data.to_string())
            }
            Err(RecvError::Lagged(missed)) => resync(missed, seen),
            Err(RecvError::Closed) => return,
        };
        if tx.send(message).await.is_err() {
            return;
        }
    }
}

/// Tells the client it missed events and should reload what it shows.
fn resync(missed: u64, last_event_id: i64) -> Event {
    let data = json!({ "missed": missed, "last_event_id": last_event_id });
    Event::default().event("resync").data(data.to_string())
}

/// Sends the visible events after `after` from the store, at most [`MAX_REPLAY`] of them
/// read; past that, a `resync`. `None` when the client left.
async fn replay(
    scope: &mut Scope,
    mut after: i64,
    ctx: &Context,
    tx: &mpsc::Sender<Event>,
) -> Option<i64> {
    let mut read_so_far = 0;
    loop {
        if read_so_far >= MAX_REPLAY {
            let newest = EventQuery {
                after: Some(after),
                limit: 1,
                ..EventQuery::default()
            };
            let more = read(ctx, move |r| r.events(&newest)).await.ok()?;
            if !more.is_empty() {
                tx.send(resync(0, after)).await.ok()?;
            }
            return Some(after);
        }
        let query = EventQuery {
            after: Some(after),
            limit: REPLAY_PAGE,
            ..EventQuery::default()
        };
        let page = read(ctx, move |r| r.events(&query)).await.ok()?;
        read_so_far += page.len();
        let done = page.len() < REPLAY_PAGE;
        for event in page {
            after = event.id;
            let message = event_message(&event);
            if scope.event_visible(&logged(event), ctx).await {
                tx.send(message).await.ok()?;
            }
        }
        if done {
            return Some(after);
        }
    }
}

pub fn routes(ctx: Context) -> BoxedFilter<(warp::reply::Response,)> {
    let ticket = warp::path!("api" / "v1" / "stream" / "ticket")
        .and(warp::post())
        .and(principal(ctx.clone()))
        .and(with(ctx.clone()))
        .and_then(ticket)
        .map(Reply::into_response);
    let stream = warp::path!("api" / "v1" / "stream")
        .and(warp::get())
        .and(warp::header::optional::<String>("authorization"))
        .and(super::query())
        .and(with(ctx.clone()))
        .and_then(caller)
        .and(warp::sse::last_event_id::<i64>())
        .and(with(ctx))
        .and_then(stream)
        .map(Reply::into_response);
    ticket.or(stream).unify().boxed()
}
