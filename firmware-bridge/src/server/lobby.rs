//! Connections that have not yet said who they are.
//!
//! Anyone can open a TCP connection; only a registered device can identify itself. Holding
//! anonymous connections apart, in a small pool of their own, keeps them from using the
//! slots of registered trackers. When the pool is full the oldest anonymous connection is
//! evicted rather than the new one refused: a flood of idle sockets opened earlier then
//! cannot keep a tracker that connects now from reaching its handshake, which takes one
//! round trip.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

#[derive(Debug)]
pub struct Lobby {
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: u64,
    /// Oldest first.
    waiting: VecDeque<(u64, CancellationToken)>,
}

/// A place in the lobby: its token is cancelled if the connection is evicted; dropping it
/// (on identification or close) leaves the lobby.
#[derive(Debug)]
pub struct Ticket {
    id: u64,
    pub evicted: CancellationToken,
    lobby: Arc<Lobby>,
}

impl Lobby {
    /// A lobby for at most `capacity` connections (at least one).
    pub fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            capacity: capacity.max(1),
            inner: Mutex::new(Inner::default()),
        })
    }

    /// Admits a new connection, evicting the oldest when full. Returns the ticket and
    /// whether someone was evicted.
    pub fn admit(self: &Arc<Self>) -> (Ticket, bool) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut evicted = false;
        while inner.waiting.len() >= self.capacity {
            if let Some((_, token)) = inner.waiting.pop_front() {
                token.cancel();
                evicted = true;
            }
        }
        let id = inner.next_id;
        inner.next_id += 1;
        let token = CancellationToken::new();
        inner.waiting.push_back((id, token.clone()));
        let ticket = Ticket {
            id,
            evicted: token,
            lobby: self.clone(),
        };
        (ticket, evicted)
    }

    pub fn len(&self) -> usize {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.waiting.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut inner = self.lobby.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(at) = inner.waiting.iter().position(|(id, _)| *id == self.id) {
            inner.waiting.remove(at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_lobby_evicts_its_oldest_connection_for_a_new_one() {
        let lobby = Lobby::new(2);
        let (first, _) = lobby.admit();
        let (second, _) = lobby.admit();
        let (third, evicted) = lobby.admit();
        assert!(evicted);
        assert!(first.evicted.is_cancelled());
        assert!(!second.evicted.is_cancelled() && !third.evicted.is_cancelled());
        assert_eq!(lobby.len(), 2);
    }

    #[test]
    fn leaving_the_lobby_frees_the_place() {
        let lobby = Lobby::new(1);
        let (first, _) = lobby.admit();
        drop(first);
        assert!(lobby.is_empty());
        let (second, evicted) = lobby.admit();
        assert!(!evicted && !second.evicted.is_cancelled());
    }
}
