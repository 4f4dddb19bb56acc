//! The pipeline's side of the exchange. It owns the sequence numbers: a message is queued
//! in the same commit as the change it reports, and a received one is marked applied in the
//! same commit as its effect, so a crash can neither lose a message nor apply one twice.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::message::{Body, Message, Outcome, Position, Signed, PROTOCOLS};
use super::routing::{concerns, view_for};
use super::Peer;
use crate::evidence::key::{fingerprint, verify};
use crate::maps::CountryCode;
use crate::store::{ExchangeCursors, LoggedEvent, OutboxMessage, Write};
use crate::telemetry::{DeviceId, Fix};
use crate::transit::{Action, Actor, Attestation, Itinerary, Transit, TransitId};

/// Locates a point in a country of the maps.
pub type Locate = Arc<dyn Fn(f64, f64) -> Option<CountryCode> + Send + Sync>;

pub struct Exchange {
    /// This instance's public key and its fingerprint.
    own_public: [u8; 32],
    own_key: String,
    countries: Vec<CountryCode>,
    peers: Vec<Arc<Peer>>,
    /// The last sequence number queued for each peer, by name.
    last_queued: HashMap<String, i64>,
    /// The last applied from each peer, by key fingerprint.
    applied: HashMap<String, i64>,
    locate: Locate,
}

impl Exchange {
    pub fn new(
        own_public: [u8; 32],
        countries: Vec<CountryCode>,
        peers: Vec<Arc<Peer>>,
        locate: Locate,
    ) -> Self {
        Self {
            own_public,
            own_key: fingerprint(&own_public),
            countries,
            peers,
            last_queued: HashMap::new(),
            applied: HashMap::new(),
            locate,
        }
    }

    /// Continues from where the store says the exchange stands.
    pub fn resume(&mut self, cursors: ExchangeCursors) {
        self.last_queued = cursors.last_queued;
        self.applied = cursors.applied;
    }

    pub fn countries(&self) -> &[CountryCode] {
        &self.countries
    }

    fn message(&mut self, peer: &Peer, id: &TransitId, body: Body, now: DateTime<Utc>) -> Write {
        let seq = self.last_queued.entry(peer.name.clone()).or_insert(0);
        *seq += 1;
        let protocol = PROTOCOLS.first().copied().unwrap_or(1);
        let message = Message {
            protocol,
            from: self.own_key.clone(),
            to: peer.fingerprint.clone(),
            seq: *seq,
            queued_at: now,
            transit_id: id.clone(),
            body,
        };
        // A transit and an action always serialise; an empty text would be refused by the
        // peer as unreadable and logged there.
        let text = serde_json::to_string(&message).unwrap_or_default();
        Write::Outbox(Box::new(OutboxMessage {
            peer: peer.name.clone(),
            seq: message.seq,
            transit_id: id.to_string(),
            kind: message.body.kind().to_owned(),
            message: text,
            created_ms: now.timestamp_millis(),
        }))
    }

    /// The peers a transit concerns: those with a country on its route.
    fn concerned(&self, itinerary: &Itinerary) -> Vec<Arc<Peer>> {
        self.peers
            .iter()
            .filter(|p| concerns(&p.countries, itinerary))
            .cloned()
            .collect()
    }

    /// The record of a transit held here, as it now stands, for each peer it concerns.
    pub fn queue_record(&mut self, t: &Transit, now: DateTime<Utc>) -> Vec<Write> {
        if t.held_by.is_some() {
            return Vec::new();
        }
        let peers = self.concerned(&t.itinerary);
        peers
            .iter()
            .map(|p| {
                let view = view_for(&p.countries, t, self.locate.as_ref());
                self.message(p, &t.id, Body::Transit(Box::new(view)), now)
            })
            .collect()
    }

    /// Fixes of a device on the transit `id`, held here (a received transit's holder
    /// forwards its positions), for each peer its itinerary concerns: those that lie in one of
    /// the peer's countries (where its customs may see positions). Only the id and the
    /// itinerary are read, which the transit book keeps decoded for every fix.
    pub fn queue_positions(
        &mut self,
        id: &TransitId,
        itinerary: &Itinerary,
        device_id: &DeviceId,
        fixes: &[&Fix],
        now: DateTime<Utc>,
    ) -> Vec<Write> {
        if fixes.is_empty() {
            return Vec::new();
        }
        let located: Vec<(Option<CountryCode>, &Fix)> = fixes
            .iter()
            .map(|f| ((self.locate)(f.point.lat, f.point.lon), *f))
            .collect();
        let peers = self.concerned(itinerary);
        let mut out = Vec::new();
        for p in peers {
            let theirs: Vec<Position> = located
                .iter()
                .filter(|(c, _)| c.is_some_and(|c| p.countries.contains(&c)))
                .map(|(_, f)| Position {
                    seq: f.seq,
                    t: f.t,
                    lat: f.point.lat,
                    lon: f.point.lon,
                    speed_kmh: f.speed_kmh,
                })
                .collect();
            if !theirs.is_empty() {
                let body = Body::Positions {
                    device_id: device_id.clone(),
                    fixes: theirs,
                };
                out.push(self.message(&p, id, body, now));
            }
        }
        out
    }

    /// Whether any peer could be owed positions (the exchange is on and has peers).
    pub fn has_peers(&self) -> bool {
        !self.peers.is_empty()
    }

    /// An officer's action here on a transit a peer holds, for that peer.
    pub fn queue_action(
        &mut self,
        t: &Transit,
        action: Action,
        by: &Actor,
        now: DateTime<Utc>,
    ) -> Option<Write> {
        let holder = t.held_by.as_ref()?;
        let peer = self.peers.iter().find(|p| p.name == *holder)?.clone();
        let body = Body::Action {
            action,
            by: by.clone(),
            at: now,
        };
        Some(self.message(&peer, &t.id, body, now))
    }

    /// The peer whose key has this fingerprint.
    pub fn peer_by_key(&self, fingerprint: &str) -> Option<Arc<Peer>> {
        self.peers
            .iter()
            .find(|p| p.fingerprint == fingerprint)
            .cloned()
    }

    /// The signed message of an action applied here, kept with the fact it recorded.
    pub fn attestation(from: &Peer, signed: &Signed) -> Attestation {
        Attestation {
            peer: from.name.clone(),
            key: from.fingerprint.clone(),
            message: signed.message.clone(),
            signature: signed.signature.clone(),
            verified: Some(true),
        }
    }

    /// Checks each attested inspection of a record received from the holder against the
    /// key this instance has for the peer that signed it (or its own): the signature, and
    /// that the signed message is that inspection, on this transit, by a peer of the
    /// inspection's country. Without a key for the signer, `verified` is left absent.
    pub fn check_attestations(&self, t: &mut Transit) {
        let id = t.id.clone();
        for inspection in &mut t.inspections {
            let (place, country) = (inspection.place.clone(), inspection.country);
            let Some(a) = inspection.attested.as_mut() else {
                continue;
            };
            let signer = if a.key == self.own_key {
                Some((self.own_public, self.countries.clone()))
            } else {
                self.peer_by_key(&a.key)
                    .map(|p| (p.key, p.countries.clone()))
            };
            a.verified = signer.map(|(key, countries)| {
                let says = serde_json::from_str::<Message>(&a.message).ok();
                let is_this = says.is_some_and(|m| {
                    m.transit_id == id
                        && m.from == a.key
                        && matches!(&m.body, Body::Action { action: Action::Inspect(r), .. } if r.place == place)
                });
                is_this && countries.contains(&country) && verify(&key, a.message.as_bytes(), &a.signature)
            });
        }
    }

    /// Whether the message was applied before.
    pub fn seen(&self, from: &Peer, seq: i64) -> bool {
        self.applied
            .get(&from.fingerprint)
            .is_some_and(|last| seq <= *last)
    }

    /// Marks the message applied (or refused for good) and records it as evidence with the
    /// sender's signature: the writes to commit with its effect.
    pub fn settle(
        &mut self,
        from: &Peer,
        message: &Message,
        signed: &Signed,
        outcome: &Outcome,
        now: DateTime<Utc>,
    ) -> Vec<Write> {
        self.applied.insert(from.fingerprint.clone(), message.seq);
        let (kind, reason) = match outcome {
            Outcome::Refused { reason, .. } => ("exchange.refused", Some(reason.clone())),
            _ => ("exchange.received", None),
        };
        let body = serde_json::json!({
            "peer": from.name,
            "key": from.fingerprint,
            "seq": message.seq,
            "kind": message.body.kind(),
            "message": signed.message,
            "signature": signed.signature,
            "reason": reason,
        });
        vec![
            Write::Event(LoggedEvent {
                kind: kind.into(),
                device_id: None,
                transit_id: Some(message.transit_id.to_string()),
                occurred_at: message.queued_at,
                detected_at: now,
                late: false,
                actor: Some(format!("exchange:{}", from.name)),
                body,
            }),
            Write::Applied {
                peer_key: from.fingerprint.clone(),
                seq: message.seq,
                at: now,
            },
        ]
    }
}
