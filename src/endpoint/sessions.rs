//! The live sessions. A device has one: a new connection of the same device replaces the old
//! one (as a reconnecting device expects). A gateway may hold several, one per client id (a
//! pool of connections), each replaced only by a reconnection under the same client id. A
//! revoked account loses all of its sessions.
//!
//! Keyed by the authenticated username first, never by a client id alone, so no client can
//! take over another account's session by naming itself after it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use tokio_util::sync::CancellationToken;

type Live = HashMap<String, HashMap<String, (u64, CancellationToken)>>;

#[derive(Default)]
pub struct Sessions {
    live: Mutex<Live>,
    next: AtomicU64,
}

impl Sessions {
    /// Registers a new session of `username` (and, for a gateway, its client id), ending the
    /// one it replaces. Returns its id and the token that ends it.
    pub(super) fn open(&self, username: &str, slot: &str) -> (u64, CancellationToken) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let token = CancellationToken::new();
        if let Ok(mut live) = self.live.lock() {
            let slots = live.entry(username.to_owned()).or_default();
            if let Some((_, old)) = slots.insert(slot.to_owned(), (id, token.clone())) {
                old.cancel();
            }
        }
        (id, token)
    }

    /// Forgets session `id` unless a newer one replaced it.
    pub(super) fn close(&self, username: &str, slot: &str, id: u64) {
        if let Ok(mut live) = self.live.lock() {
            if let Some(slots) = live.get_mut(username) {
                if slots.get(slot).is_some_and(|(current, _)| *current == id) {
                    slots.remove(slot);
                }
                if slots.is_empty() {
                    live.remove(username);
                }
            }
        }
    }

    /// Ends every session of `username` (its account was revoked or rotated); true if it
    /// had one.
    pub fn disconnect(&self, username: &str) -> bool {
        let ended = self.live.lock().ok().and_then(|mut l| l.remove(username));
        ended
            .map(|slots| slots.into_values().for_each(|(_, token)| token.cancel()))
            .is_some()
    }

    /// How many sessions are open.
    pub fn count(&self) -> usize {
        self.live
            .lock()
            .map_or(0, |l| l.values().map(HashMap::len).sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_session_of_the_same_device_ends_the_old_one() {
        let sessions = Sessions::default();
        let (first, first_token) = sessions.open("dev-a", "");
        let (_, other) = sessions.open("dev-b", "");
        let (second, second_token) = sessions.open("dev-a", "");
        assert!(first_token.is_cancelled());
        assert!(!other.is_cancelled() && !second_token.is_cancelled());
        // The replaced session closing late does not forget its successor.
        sessions.close("dev-a", "", first);
        assert_eq!(sessions.count(), 2);
        sessions.close("dev-a", "", second);
        assert_eq!(sessions.count(), 1);
    }

    #[test]
    fn a_gateway_keeps_one_session_per_client_id_and_loses_all_when_revoked() {
        let sessions = Sessions::default();
        let (_, a) = sessions.open("bridge", "bridge-0");
        let (_, b) = sessions.open("bridge", "bridge-1");
        assert!(!a.is_cancelled() && !b.is_cancelled());
        assert_eq!(sessions.count(), 2);
        assert!(sessions.disconnect("bridge"));
        assert!(a.is_cancelled() && b.is_cancelled());
        assert!(!sessions.disconnect("bridge"));
        assert_eq!(sessions.count(), 0);
    }
}
