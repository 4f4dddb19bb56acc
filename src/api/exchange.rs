//! The exchange's endpoints (`docs/exchange.md`). A peer authenticates by its instance key:
//! every message is verified against the key configured for the peer it claims to come
//! from before any is applied, and a forged one fails the whole delivery.

use std::sync::Arc;

use tokio::sync::oneshot;
use tracing::warn;
use warp::filters::BoxedFilter;
use warp::{Filter, Rejection, Reply};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::auth::principal;
use super::error::ApiError;
use super::transits::visible;
use super::{read, with, Context};
use crate::auth::{Principal, Role};
use crate::evidence::key::verify;
use crate::exchange::message::{Delivery, Hello, Receipt, MAX_BATCH};
use crate::exchange::{Message, Outcome, Peer, Signed, PROTOCOLS};
use crate::pipeline::{Input, TransitCommand};

/// A delivery of [`MAX_BATCH`] transits with long histories fits well within this.
const MAX_DELIVERY: u64 = 4 * 1024 * 1024;

/// GET /api/v1/exchange/hello
async fn hello(ctx: Context) -> Result<impl Reply, Rejection> {
    Ok(warp::reply::json(&Hello {
        protocols: PROTOCOLS.to_vec(),
        key: ctx.instance_key.public_hex(),
        countries: ctx.exchange.countries.clone(),
    }))
}

/// A message checked for who sent it and to whom, not yet for what it says.
struct Authentic {
    from: Arc<Peer>,
    message: Message,
    signed: Signed,
}

fn authenticate(ctx: &Context, signed: Signed, k: usize) -> Result<Authentic, ApiError> {
    let message: Message = serde_json::from_str(&signed.message)
        .map_err(|e| ApiError::bad_request(format!("message {k} is not a message: {e}")))?;
    let Some(from) = ctx.exchange.peer_by_key(&message.from) else {
        warn!(key = %message.from, "A message from an unknown instance key was refused.");
        return Err(ApiError::unauthorized(format!(
            "message {k}: no peer has the key {}",
            message.from
        )));
    };
    if !verify(&from.key, signed.message.as_bytes(), &signed.signature) {
        warn!(peer = %from.name, seq = message.seq, "A message whose signature does not verify was refused.");
        return Err(ApiError::unauthorized(format!(
            "message {k}: the signature does not verify with the key of peer {}",
            from.name
        )));
    }
    if message.to != ctx.instance_key.fingerprint() {
        warn!(peer = %from.name, seq = message.seq, "A message addressed to another instance was refused.");
        return Err(ApiError::forbidden(format!(
            "message {k} is addressed to {}, not to this instance",
            message.to
        )));
    }
    Ok(Authentic {
        from,
        message,
        signed,
    })
}

/// POST /api/v1/exchange/messages
async fn receive(delivery: Delivery, ctx: Context) -> Result<impl Reply, Rejection> {
    if !ctx.exchange.is_on() {
        return Err(ApiError::forbidden("this instance takes part in no exchange").into());
    }
    if delivery.messages.len() > MAX_BATCH {
        return Err(
            ApiError::bad_request(format!("at most {MAX_BATCH} messages in one delivery")).into(),
        );
    }
    // Every message is authenticated before any is applied.
    let mut checked = Vec::with_capacity(delivery.messages.len());
    for (k, signed) in delivery.messages.into_iter().enumerate() {
        checked.push(authenticate(&ctx, signed, k)?);
    }
    let mut results = Vec::with_capacity(checked.len());
    for Authentic {
        from,
        message,
        signed,
    } in checked
    {
        let seq = message.seq;
        if !PROTOCOLS.contains(&message.protocol) {
            let reason = format!(
                "protocol {} is not spoken here (this release speaks {PROTOCOLS:?})",
                message.protocol
            );
            warn!(peer = %from.name, seq, %reason, "A peer's message was refused.");
            results.push(Outcome::Refused { seq, reason });
            continue;
        }
        let (reply, answer) = oneshot::channel();
        let command = TransitCommand::Receive {
            from,
            message: Box::new(message),
            signed,
            reply,
        };
        let stopping = || ApiError::unavailable("the server is shutting down");
        ctx.pipeline
            .send(Input::Transit(command))
            .await
            .map_err(|_| stopping())?;
        results.push(answer.await.map_err(|_| stopping())?);
    }
    Ok(warp::reply::json(&Receipt { results }))
}

/// GET /api/v1/exchange/peers
///
/// How delivery to each peer stands (authorities only).
async fn peers(who: Principal, ctx: Context) -> Result<impl Reply, Rejection> {
    if matches!(who.role, Role::Carrier(_)) {
        return Err(
            ApiError::forbidden("carriers do not see the exchange between authorities").into(),
        );
    }
    let status = ctx.exchange.status.snapshot();
    let peers: Vec<serde_json::Value> = ctx
        .exchange
        .peers
        .iter()
        .map(|p| {
            serde_json::json!({
                "name": p.name,
                "url": p.url,
                "countries": p.countries,
                "fingerprint": p.fingerprint,
                "delivery": status.get(&p.name).cloned().unwrap_or_default(),
            })
        })
        .collect();
    Ok(warp::reply::json(&serde_json::json!({
        "countries": ctx.exchange.countries,
        "peers": peers,
    })))
}

/// One peer's share of a transit, as the dashboard shows it.
#[derive(Serialize)]
struct Shared {
    peer: String,
    countries: Vec<crate::maps::CountryCode>,
    /// The last message of each kind the peer took.
    delivered: Vec<Sent>,
    /// Messages about this transit still waiting for it, oldest first.
    waiting: Vec<Sent>,
    reachable: bool,
    failing_since: Option<DateTime<Utc>>,
    last_error: Option<String>,
}

#[derive(Serialize)]
struct Sent {
    kind: String,
    seq: i64,
    queued_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delivered_at: Option<DateTime<Utc>>,
}

/// GET /api/v1/transits/{id}/exchange
///
/// Which peer instances the transit has been shared with, what each has taken and when, and
/// what still waits for it (authorities who see the transit).
async fn of_transit(id: String, who: Principal, ctx: Context) -> Result<impl Reply, Rejection> {
    let t = visible(id, &who, &ctx).await?;
    if matches!(who.role, Role::Carrier(_)) {
        return Err(
            ApiError::forbidden("carriers do not see the exchange between authorities").into(),
        );
    }
    let transit_id = t.id.to_string();
    let rows = read(&ctx, move |r| r.exchange_of_transit(&transit_id)).await?;
    let status = ctx.exchange.status.snapshot();
    let at = |ms: i64| DateTime::<Utc>::from_timestamp_millis(ms);
    // The peers it concerns (or, for a received copy, its holder), and any other peer that
    // was sent something about it.
    let mut names: Vec<String> = ctx
        .exchange
        .peers
        .iter()
        .filter(|p| match &t.held_by {
            Some(holder) => *holder == p.name,
            None => crate::exchange::routing::concerns(&p.countries, &t.itinerary),
        })
        .map(|p| p.name.clone())
        .collect();
    for row in &rows {
        if !names.contains(&row.peer) {
            names.push(row.peer.clone());
        }
    }
    let peers: Vec<Shared> = names
        .into_iter()
        .map(|name| {
            let countries = ctx
                .exchange
                .peers
                .iter()
                .find(|p| p.name == name)
                .map(|p| p.countries.clone())
                .unwrap_or_default();
            let mine = rows.iter().filter(|r| r.peer == name);
            let sent = |r: &crate::store::TransitExchange| Sent {
                kind: r.kind.clone(),
                seq: r.seq,
                queued_at: at(r.queued_ms),
                delivered_at: r.delivered_ms.and_then(at),
            };
            let delivered = mine
                .clone()
                .filter(|r| r.delivered_ms.is_some())
                .map(sent)
                .collect();
            let waiting = mine
                .filter(|r| r.delivered_ms.is_none())
                .map(sent)
                .collect();
            let s = status.get(&name).cloned().unwrap_or_default();
            Shared {
                peer: name,
                countries,
                delivered,
                waiting,
                reachable: s.reachable,
                failing_since: s.failing_since,
                last_error: s.last_error,
            }
        })
        .collect();
    Ok(warp::reply::json(&serde_json::json!({
        "transit_id": t.id,
        "held_by": t.held_by,
        "peers": peers,
    })))
}

pub fn routes(ctx: Context) -> BoxedFilter<(warp::reply::Response,)> {
    let hello = warp::path!("api" / "v1" / "exchange" / "hello")
        .and(warp::get())
        .and(with(ctx.clone()))
        .and_then(hello)
        .map(Reply::into_response);
    let receive = warp::path!("api" / "v1" / "exchange" / "messages")
        .and(warp::post())
        .and(warp::body::content_length_limit(MAX_DELIVERY))
        .and(warp::body::json())
        .and(with(ctx.clone()))
        .and_then(receive)
        .map(Reply::into_response);
    let peers = warp::path!("api" / "v1" / "exchange" / "peers")
        .and(warp::get())
        .and(principal(ctx.clone()))
        .and(with(ctx.clone()))
        .and_then(peers)
        .map(Reply::into_response);
    let of_transit = warp::path!("api" / "v1" / "transits" / String / "exchange")
        .and(warp::get())
        .and(principal(ctx.clone()))
        .and(with(ctx))
        .and_then(of_transit)
        .map(Reply::into_response);
    hello
        .or(receive)
        .unify()
        .or(peers)
        .unify()
        .or(of_transit)
        .unify()
        .boxed()
}
