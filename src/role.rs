//! Which role this instance has among several on one PostgreSQL store: the active one, which
//! consumes the broker and writes, or a standby, which serves reads and waits for the lease.
//!
//! One owner: [`Roles`] holds the role in a `watch` channel that the API reads and the app
//! waits on. The lease itself is kept by a thread of its own ([`keep`]), because the
//! PostgreSQL client blocks and a renewal must never wait behind the async runtime's work.
//!
//! A lost lease is final (crash-only): intake stops at once, the process exits non-zero, and
//! its supervisor (systemd, compose) starts it again as a standby. Resuming as a standby in
//! place would need every part (the pipeline's tracking state, the committer's queue, the
//! broker connection) to be unwound to a known state; a fresh start is that state already,
//! and it is the path the kill -9 drills test.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::store::postgres::lease::{LeaseClient, Loss, Standing, Step, Tenure, Terms};

/// What this instance is, as `/healthz` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// The only instance its store allows (SQLite): always active, no lease.
    Single,
    /// Waiting for the lease; serves reads. `holder`: the active instance, when known.
    Standby { holder: Option<String> },
    /// Holds the lease of `epoch`: consumes the broker and writes.
    Active { epoch: i64 },
    /// Held the lease of `epoch` and lost it: intake has stopped and the process exits.
    Lost { epoch: i64 },
}

impl Role {
    /// The name `/healthz` gives the role.
    pub fn name(&self) -> &'static str {
        match self {
            Role::Single | Role::Active { .. } => "active",
            Role::Standby { .. } => "standby",
            Role::Lost { .. } => "fenced",
        }
    }

    pub fn epoch(&self) -> Option<i64> {
        match self {
            Role::Active { epoch } | Role::Lost { epoch } => Some(*epoch),
            Role::Single | Role::Standby { .. } => None,
        }
    }

    /// True when this instance takes writes.
    pub fn writes(&self) -> bool {
        matches!(self, Role::Single | Role::Active { .. })
    }
}

/// The role, and until when the lease is good on this instance's monotonic clock.
pub struct Roles {
    role: watch::Sender<Role>,
    valid_until: Mutex<Option<Instant>>,
    /// Cancelled when the lease is lost (or a commit was fenced): stops intake at once.
    lost: CancellationToken,
    /// Why the app stopped by itself, other than a lost lease (a takeover that failed).
    fault: Mutex<Option<String>>,
}

impl Roles {
    /// An instance without a lease: always active.
    pub fn single() -> Arc<Self> {
        Self::starting(Role::Single)
    }

    /// An instance that starts as a standby.
    pub fn standby() -> Arc<Self> {
        Self::starting(Role::Standby { holder: None })
    }

    fn starting(role: Role) -> Arc<Self> {
        Arc::new(Self {
            role: watch::channel(role).0,
            valid_until: Mutex::new(None),
            lost: CancellationToken::new(),
            fault: Mutex::new(None),
        })
    }

    pub fn role(&self) -> Role {
        self.role.borrow().clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<Role> {
        self.role.subscribe()
    }

    /// Notes why the app stops by itself.
    pub fn set_fault(&self, fault: String) {
        if let Ok(mut kept) = self.fault.lock() {
            kept.get_or_insert(fault);
        }
    }

    pub fn fault(&self) -> Option<String> {
        self.fault.lock().ok().and_then(|f| f.clone())
    }

    /// Cancelled once the lease is lost.
    pub fn lost(&self) -> CancellationToken {
        self.lost.clone()
    }

    /// True while this instance may consume the broker: the only instance, or the active one
    /// within its lease. Checked before every (re)connection to the broker, so a former
    /// holder cannot take the persistent session back from its successor.
    pub fn holds(&self) -> bool {
        match self.role() {
            Role::Single => true,
            Role::Active { .. } => self
                .valid_until
                .lock()
                .map(|until| until.is_some_and(|until| Instant::now() < until))
                .unwrap_or(false),
            Role::Standby { .. } | Role::Lost { .. } => false,
        }
    }

    fn standing(&self, standing: Standing, holder: Option<String>) {
        // Lost is final, whatever the lease thread learns after another part (a fenced
        // commit) found the lease gone.
        if self.lost.is_cancelled() {
            return;
        }
        match standing {
            Standing::Waiting => {
                self.role.send_if_modified(|role| {
                    let next = Role::Standby { holder };
                    let changed = *role != next;
                    *role = next;
                    changed
                });
            }
            Standing::Holding { epoch, valid_until } => {
                if let Ok(mut until) = self.valid_until.lock() {
                    *until = Some(valid_until);
                }
                self.role.send_if_modified(|role| {
                    let changed = *role != Role::Active { epoch };
                    *role = Role::Active { epoch };
                    changed
                });
            }
            Standing::Lost { epoch, why } => self.lose(epoch, why),
        }
    }

    /// Marks the lease lost (once) and stops intake.
    pub fn lose(&self, epoch: i64, why: Loss) {
        if let Ok(mut until) = self.valid_until.lock() {
            *until = None;
        }
        let first = self.role.send_if_modified(|role| {
            let first = !matches!(role, Role::Lost { .. });
            *role = Role::Lost { epoch };
            first
        });
        if first {
            let why = match why {
                Loss::Expired => "it could not be renewed in time",
                Loss::TakenOver => "another instance took it over",
            };
            error!(epoch, why, "Lost the lease: intake stopped; exiting so that this instance comes back as a standby.");
        }
        self.lost.cancel();
    }

    /// Loses the lease once its hold runs out on this instance's clock, even while the lease
    /// thread is stuck in a call to an unreachable database.
    pub async fn watch_expiry(self: Arc<Self>, stop: CancellationToken) {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = self.lost.cancelled() => return,
                _ = tick.tick() => {}
            }
            if let Role::Active { epoch } = self.role() {
                if !self.holds() {
                    self.lose(epoch, Loss::Expired);
                }
            }
        }
    }
}

/// Keeps the lease on a thread of its own until `stop` or until it is lost: tries for it
/// every period while a standby, renews it every period while active, and gives it up at a
/// clean stop so a standby need not wait for it to expire.
///
/// # Errors
/// The thread cannot start.
pub fn keep(
    url: String,
    me: String,
    terms: Terms,
    roles: Arc<Roles>,
    stop: CancellationToken,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("lease".into())
        .spawn(move || Keeper::new(url, me, terms, roles).run(&stop))
}

struct Keeper {
    url: String,
    me: String,
    terms: Terms,
    roles: Arc<Roles>,
    tenure: Tenure,
    client: Option<LeaseClient>,
    /// When the last failure was logged: one line per outage, then one a minute.
    complained: Option<Instant>,
}

impl Keeper {
    fn new(url: String, me: String, terms: Terms, roles: Arc<Roles>) -> Self {
        Self {
            url,
            me,
            terms,
            roles,
            tenure: Tenure::new(terms),
            client: None,
            complained: None,
        }
    }

    fn run(mut self, stop: &CancellationToken) {
        while !stop.is_cancelled() && !self.roles.lost.is_cancelled() {
            let asked_at = Instant::now();
            // A `Stop` asks nothing: the standing below is then `Lost`, which stops intake
            // and ends this loop.
            let step = self.tenure.next(asked_at);
            if step != Step::Stop {
                self.ask(step, asked_at);
            }
            let holder = match self.tenure.standing() {
                Standing::Waiting => self.client.as_mut().and_then(|c| c.holder().ok()),
                _ => None,
            };
            self.roles
                .standing(self.tenure.standing(), holder.flatten().map(|(who, _)| who));
            let next = asked_at + self.terms.every;
            while Instant::now() < next && !stop.is_cancelled() {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        if let (Standing::Holding { epoch, .. }, Some(client)) =
            (self.tenure.standing(), self.client.as_mut())
        {
            if !self.roles.lost.is_cancelled() {
                match client.release(epoch) {
                    Ok(()) => info!(epoch, "Gave the lease up."),
                    Err(e) => {
                        warn!(error = %e, epoch, "Could not give the lease up; it expires by itself.")
                    }
                }
            }
        }
    }

    fn ask(&mut self, step: Step, asked_at: Instant) {
        if self.client.as_ref().is_none_or(LeaseClient::is_closed) {
            match LeaseClient::connect(&self.url, &self.me, self.terms) {
                Ok(client) => self.client = Some(client),
                Err(e) => return self.failed(&e),
            }
        }
        let Some(client) = self.client.as_mut() else {
            return;
        };
        let answer = match step {
            Step::Acquire => client.acquire(),
            Step::Renew { epoch } => client.renew(epoch),
            Step::Stop => return,
        };
        match answer {
            Ok(ours) => {
                let was_waiting = self.tenure.standing() == Standing::Waiting;
                self.tenure.answered(asked_at, ours);
                if let (true, Some(epoch)) = (was_waiting, ours) {
                    info!(epoch, holder = %self.me, "Acquired the lease: this instance becomes the active one.");
                }
                self.complained = None;
            }
            Err(e) => self.failed(&e),
        }
    }

    fn failed(&mut self, e: &crate::store::StoreError) {
        if self
            .complained
            .is_none_or(|at| at.elapsed() >= Duration::from_secs(60))
        {
            warn!(error = %e, "The lease could not be checked; retrying every period.");
            self.complained = Some(Instant::now());
        }
        if self.client.as_ref().is_some_and(LeaseClient::is_closed) {
            self.client = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_standby_takes_no_writes_and_an_active_instance_only_within_its_hold() {
        let roles = Roles::standby();
        assert!(!roles.role().writes());
        assert!(!roles.holds());
        let now = Instant::now();
        roles.standing(
            Standing::Holding {
                epoch: 4,
                valid_until: now + Duration::from_secs(60),
            },
            None,
        );
        assert_eq!(roles.role(), Role::Active { epoch: 4 });
        assert!(roles.role().writes() && roles.holds());
        roles.standing(
            Standing::Holding {
                epoch: 4,
                valid_until: now,
            },
            None,
        );
        assert!(!roles.holds(), "past its hold it may not dial the broker");
    }

    #[test]
    fn a_lost_lease_stops_intake_once_and_for_good() {
        let roles = Roles::standby();
        roles.standing(
            Standing::Holding {
                epoch: 2,
                valid_until: Instant::now() + Duration::from_secs(60),
            },
            None,
        );
        let lost = roles.lost();
        assert!(!lost.is_cancelled());
        roles.lose(2, Loss::TakenOver);
        assert!(lost.is_cancelled());
        assert_eq!(roles.role(), Role::Lost { epoch: 2 });
        assert_eq!(roles.role().name(), "fenced");
        // A late renewal's answer cannot bring it back.
        roles.standing(Standing::Waiting, Some("other".into()));
        assert!(!roles.holds() && !roles.role().writes());
    }

    #[test]
    fn the_only_instance_is_always_active_and_names_no_epoch() {
        let roles = Roles::single();
        assert!(roles.holds() && roles.role().writes());
        assert_eq!(
            (roles.role().name(), roles.role().epoch()),
            ("active", None)
        );
    }
}
