//! The lease that makes exactly one of several instances on one database the active one.
//!
//! One row, `caravan_lease`: its holder, an epoch raised by one at every takeover, and an
//! expiry in the database's time. Only the database's clock decides who holds it (`now()` in
//! the statements), so instances whose clocks disagree cannot both believe they hold it. The
//! holder renews every second for five; a standby tries every second, so a takeover comes
//! within `ttl + every` of the holder's last renewal.
//!
//! The epoch fences the writer: every commit of an active instance first reads the epoch
//! `FOR KEY SHARE` in its own transaction ([`hold`]) and is refused when it is not the
//! writer's. A takeover locks the row `FOR UPDATE`, which waits for a commit in flight, and
//! every later commit of the former holder reads the new epoch, so nothing a former holder
//! writes lands after a takeover. A renewal changes only the expiry: its lock (`FOR NO KEY
//! UPDATE`) does not wait for the holder's own commits, so a commit stuck behind a stalled
//! store cannot make its instance lose the lease; the stall shows as one in `/healthz`.
//!
//! [`Tenure`] is the pure part (what to do next, and whether the hold is still good on this
//! instance's monotonic clock); [`LeaseClient`] is the SQL.

use std::time::{Duration, Instant};

use postgres::{Client, GenericClient, NoTls};

use crate::store::StoreError;

/// How long a lease lasts without renewal, and how often it is renewed (or tried for).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Terms {
    pub ttl: Duration,
    pub every: Duration,
}

impl Default for Terms {
    /// Five seconds, renewed every second: a holder survives four missed renewals (a
    /// database failover, a long pause), and a standby takes over within ten seconds of the
    /// holder's death.
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(5),
            every: Duration::from_secs(1),
        }
    }
}

/// What this instance should ask the database next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Take the lease if it has expired.
    Acquire,
    /// Renew the lease of this epoch.
    Renew { epoch: i64 },
    /// The lease is lost: ask nothing more, stop.
    Stop,
}

/// Why a held lease was lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loss {
    /// No renewal succeeded for the ttl (the database unreachable, or this process paused):
    /// another instance may hold it by now.
    Expired,
    /// The renewal found another epoch: another instance took over.
    TakenOver,
}

/// This instance's standing in the lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    /// Not holding it; trying every `every`.
    Waiting,
    /// Holding it, good until `valid_until` on this instance's monotonic clock.
    Holding { epoch: i64, valid_until: Instant },
    /// Held it once and lost it. Final: a lost instance never tries again (it exits, and a
    /// restart comes back as a standby).
    Lost { epoch: i64, why: Loss },
}

/// The timing decisions of the lease, without SQL or clocks of its own: every instant is
/// passed in.
#[derive(Debug)]
pub struct Tenure {
    terms: Terms,
    standing: Standing,
}

impl Tenure {
    pub fn new(terms: Terms) -> Self {
        Self {
            terms,
            standing: Standing::Waiting,
        }
    }

    pub fn standing(&self) -> Standing {
        self.standing
    }

    /// What to ask next, at `now`.
    pub fn next(&mut self, now: Instant) -> Step {
        self.expire(now);
        match self.standing {
            Standing::Waiting => Step::Acquire,
            Standing::Holding { epoch, .. } => Step::Renew { epoch },
            Standing::Lost { .. } => Step::Stop,
        }
    }

    /// True while this instance may act as the holder at `now`.
    pub fn holds(&mut self, now: Instant) -> bool {
        self.expire(now);
        matches!(self.standing, Standing::Holding { .. })
    }

    /// The database answered a request sent at `asked_at`: `Some(epoch)` when the lease is
    /// (still) ours, `None` when the acquire found it held or the renewal found another
    /// epoch.
    ///
    /// The hold is good until `asked_at + ttl - every`: the database set the expiry to its
    /// `now() + ttl`, and its `now()` was no earlier than `asked_at`, so the instance stops
    /// acting at least one period before any other instance can take over.
    pub fn answered(&mut self, asked_at: Instant, ours: Option<i64>) {
        self.expire(asked_at);
        let valid_until = asked_at + self.terms.ttl.saturating_sub(self.terms.every);
        self.standing = match (self.standing, ours) {
            (Standing::Lost { .. }, _) => self.standing,
            (Standing::Waiting, None) => Standing::Waiting,
            (Standing::Waiting, Some(epoch)) => Standing::Holding { epoch, valid_until },
            (Standing::Holding { epoch, .. }, Some(renewed)) if renewed == epoch => {
                Standing::Holding { epoch, valid_until }
            }
            (Standing::Holding { epoch, .. }, _) => Standing::Lost {
                epoch,
                why: Loss::TakenOver,
            },
        };
    }

    /// A hold not renewed in time is lost.
    fn expire(&mut self, now: Instant) {
        if let Standing::Holding { epoch, valid_until } = self.standing {
            if now >= valid_until {
                self.standing = Standing::Lost {
                    epoch,
                    why: Loss::Expired,
                };
            }
        }
    }
}

/// Fences a commit: to be run first in the writer's transaction. The key-share lock it takes
/// makes a takeover wait for this transaction, and the takeover's new epoch makes every
/// later one fail here.
///
/// # Errors
/// [`StoreError::Fenced`] when the lease's epoch is not `epoch` (or the row is gone), or the
/// query failed.
pub fn hold(tx: &mut impl GenericClient, epoch: i64) -> Result<(), StoreError> {
    let row = tx.query_opt(
        "SELECT epoch FROM caravan_lease WHERE id = 1 FOR KEY SHARE",
        &[],
    )?;
    let current: Option<i64> = row.map(|row| row.try_get(0)).transpose()?;
    if current == Some(epoch) {
        Ok(())
    } else {
        Err(StoreError::Fenced { epoch })
    }
}

/// Who holds the lease now, and its epoch, when it has not expired (database time).
///
/// # Errors
/// The query failed.
pub fn holder(c: &mut impl GenericClient) -> Result<Option<(String, i64)>, StoreError> {
    let row = c.query_opt(
        "SELECT holder, epoch FROM caravan_lease
         WHERE id = 1 AND expires_at >= now() AND holder IS NOT NULL",
        &[],
    )?;
    Ok(match row {
        Some(row) => Some((row.try_get(0)?, row.try_get(1)?)),
        None => None,
    })
}

/// The lease's own connection, apart from the writer's and the readers': a renewal must
/// never wait behind a commit or a long read.
pub struct LeaseClient {
    client: Client,
    me: String,
    ttl_ms: i64,
}

impl LeaseClient {
    /// Connects as `me` (the name other instances see as the holder). Each statement is
    /// given at most `every` (and the connection as long to be made), so a stuck database
    /// cannot keep a renewal waiting past the point the hold is judged lost.
    ///
    /// # Errors
    /// The URL is invalid, or the database cannot be reached.
    pub fn connect(url: &str, me: &str, terms: Terms) -> Result<Self, StoreError> {
        let mut config: postgres::Config = url.parse()?;
        let mut client = config
            .connect_timeout(terms.every.max(Duration::from_secs(1)))
            .application_name("caravan-lease")
            .connect(NoTls)?;
        let limit_ms = terms.every.as_millis().max(100);
        client.batch_execute(&format!("SET statement_timeout = {limit_ms}"))?;
        Ok(Self {
            client,
            me: me.to_owned(),
            ttl_ms: i64::try_from(terms.ttl.as_millis()).unwrap_or(i64::MAX),
        })
    }

    /// Takes the lease when it has expired; its new epoch, or `None` while another holds it.
    ///
    /// # Errors
    /// The statement failed.
    pub fn acquire(&mut self) -> Result<Option<i64>, StoreError> {
        let row = self.client.query_opt(
            // `FOR UPDATE` first: a plain UPDATE of these columns would lock the row only
            // `FOR NO KEY UPDATE`, which does not wait for the `FOR KEY SHARE` of a commit in
            // flight (`hold`). Checked again once the lock is had: a renewal may have come.
            "WITH expired AS (
                 SELECT id FROM caravan_lease WHERE id = 1 AND expires_at < now() FOR UPDATE
             )
             UPDATE caravan_lease
             SET holder = $1, epoch = epoch + 1,
                 expires_at = now() + $2 * interval '1 millisecond'
             FROM expired
             WHERE caravan_lease.id = expired.id
             RETURNING caravan_lease.epoch",
            &[&self.me, &(self.ttl_ms as f64)],
        )?;
        Ok(row.map(|row| row.try_get(0)).transpose()?)
    }

    /// Extends the lease of `epoch`; `None` when another instance has taken it over.
    ///
    /// # Errors
    /// The statement failed.
    pub fn renew(&mut self, epoch: i64) -> Result<Option<i64>, StoreError> {
        let row = self.client.query_opt(
            "UPDATE caravan_lease
             SET expires_at = now() + $2 * interval '1 millisecond'
             WHERE id = 1 AND epoch = $1
             RETURNING epoch",
            &[&epoch, &(self.ttl_ms as f64)],
        )?;
        Ok(row.map(|row| row.try_get(0)).transpose()?)
    }

    /// Gives the lease up at a clean stop, so a standby need not wait for it to expire.
    ///
    /// # Errors
    /// The statement failed.
    pub fn release(&mut self, epoch: i64) -> Result<(), StoreError> {
        self.client.execute(
            "UPDATE caravan_lease SET expires_at = '-infinity' WHERE id = 1 AND epoch = $1",
            &[&epoch],
        )?;
        Ok(())
    }

    /// Who holds the lease now (see [`holder`]).
    ///
    /// # Errors
    /// The query failed.
    pub fn holder(&mut self) -> Result<Option<(String, i64)>, StoreError> {
        holder(&mut self.client)
    }

    /// True when the connection is gone and a new one is needed.
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TERMS: Terms = Terms {
        ttl: Duration::from_secs(5),
        every: Duration::from_secs(1),
    };

    #[test]
    fn a_standby_tries_to_acquire_until_the_database_gives_it_the_lease() {
        let start = Instant::now();
        let mut tenure = Tenure::new(TERMS);
        assert_eq!(tenure.next(start), Step::Acquire);
        tenure.answered(start, None);
        assert_eq!(tenure.next(start + TERMS.every), Step::Acquire);
        tenure.answered(start + TERMS.every, Some(7));
        assert_eq!(
            tenure.next(start + TERMS.every * 2),
            Step::Renew { epoch: 7 }
        );
        assert!(tenure.holds(start + TERMS.every * 2));
    }

    #[test]
    fn a_holder_that_cannot_renew_for_the_ttl_less_one_period_has_lost_the_lease() {
        let start = Instant::now();
        let mut tenure = Tenure::new(TERMS);
        tenure.answered(start, Some(3));
        // The database is unreachable from here on: no answer comes.
        assert!(tenure.holds(start + Duration::from_millis(3_999)));
        assert!(!tenure.holds(start + Duration::from_secs(4)));
        assert_eq!(
            tenure.standing(),
            Standing::Lost {
                epoch: 3,
                why: Loss::Expired
            }
        );
        assert_eq!(tenure.next(start + Duration::from_secs(4)), Step::Stop);
    }

    #[test]
    fn a_renewal_that_finds_another_epoch_loses_the_lease_for_good() {
        let start = Instant::now();
        let mut tenure = Tenure::new(TERMS);
        tenure.answered(start, Some(3));
        tenure.answered(start + TERMS.every, None);
        let lost = Standing::Lost {
            epoch: 3,
            why: Loss::TakenOver,
        };
        assert_eq!(tenure.standing(), lost);
        // Even a later answer in its favour does not bring it back.
        tenure.answered(start + TERMS.every * 2, Some(4));
        assert_eq!(tenure.standing(), lost);
        assert_eq!(tenure.next(start + TERMS.every * 2), Step::Stop);
    }

    #[test]
    fn a_paused_holder_whose_late_renewal_succeeds_has_still_lost_the_lease() {
        // SIGSTOP for longer than the ttl: on waking, the renewal was asked too late to
        // count, whatever the database answers.
        let start = Instant::now();
        let mut tenure = Tenure::new(TERMS);
        tenure.answered(start, Some(3));
        let woke = start + Duration::from_secs(30);
        tenure.answered(woke, Some(3));
        assert!(matches!(
            tenure.standing(),
            Standing::Lost {
                why: Loss::Expired,
                ..
            }
        ));
    }

    /// A fresh, migrated database with the lease table, and its URL.
    fn leased_db(test: &str) -> Option<(crate::store::postgres::test_db::TestDb, Client)> {
        let db = crate::store::postgres::test_db::fresh(test)?;
        let mut client = Client::connect(&db.url, NoTls).expect("the test database");
        client
            .batch_execute(include_str!("migrations/0002_lease.sql"))
            .expect("the lease table");
        Some((db, client))
    }

    fn short(ttl_ms: u64) -> Terms {
        Terms {
            ttl: Duration::from_millis(ttl_ms),
            every: Duration::from_millis(100),
        }
    }

    #[test]
    fn the_lease_is_acquired_once_expired_and_not_before() {
        std::thread::spawn(|| {
            let Some((db, _admin)) = leased_db("lease_acquired_once_expired") else {
                return;
            };
            let mut a = LeaseClient::connect(&db.url, "a", short(800)).expect("a");
            let mut b = LeaseClient::connect(&db.url, "b", short(800)).expect("b");
            assert_eq!(a.acquire().expect("acquire"), Some(1));
            assert_eq!(b.acquire().expect("acquire"), None, "held by a");
            assert_eq!(a.acquire().expect("acquire"), None, "not even a twice");
            assert_eq!(b.holder().expect("holder"), Some(("a".into(), 1)));
            std::thread::sleep(Duration::from_millis(300));
            assert_eq!(a.renew(1).expect("renew"), Some(1));
            std::thread::sleep(Duration::from_millis(600));
            assert_eq!(b.acquire().expect("acquire"), None, "renewed, not expired");
            std::thread::sleep(Duration::from_millis(400));
            assert_eq!(
                b.acquire().expect("acquire"),
                Some(2),
                "expired: taken over"
            );
            assert_eq!(a.holder().expect("holder"), Some(("b".into(), 2)));
        })
        .join()
        .expect("the test thread");
    }

    #[test]
    fn a_renewal_or_a_commit_with_a_stale_epoch_fails() {
        std::thread::spawn(|| {
            let Some((db, mut admin)) = leased_db("lease_stale_epoch") else {
                return;
            };
            let mut a = LeaseClient::connect(&db.url, "a", short(200)).expect("a");
            let mut b = LeaseClient::connect(&db.url, "b", short(200)).expect("b");
            assert_eq!(a.acquire().expect("acquire"), Some(1));
            std::thread::sleep(Duration::from_millis(300));
            assert_eq!(b.acquire().expect("acquire"), Some(2));
            assert_eq!(a.renew(1).expect("renew"), None, "a's epoch is gone");

            let mut tx = admin.transaction().expect("tx");
            assert!(matches!(
                hold(&mut tx, 1),
                Err(StoreError::Fenced { epoch: 1 })
            ));
            drop(tx);
            let mut tx = admin.transaction().expect("tx");
            hold(&mut tx, 2).expect("the holder's epoch passes");
            tx.commit().expect("commit");

            b.release(2).expect("release");
            assert_eq!(a.holder().expect("holder"), None);
            assert_eq!(
                a.acquire().expect("acquire"),
                Some(3),
                "released: free at once"
            );
        })
        .join()
        .expect("the test thread");
    }

    #[test]
    fn a_writer_frozen_inside_a_commit_holds_a_takeover_back_only_briefly() {
        std::thread::spawn(|| {
            let Some((db, mut writer)) = leased_db("lease_frozen_writer") else {
                return;
            };
            let mut a = LeaseClient::connect(&db.url, "a", short(100)).expect("a");
            assert_eq!(a.acquire().expect("acquire"), Some(1));
            // The fenced writer's session, frozen (SIGSTOP) after its fence check.
            writer
                .batch_execute(crate::store::postgres::writer::FENCED_IDLE_IN_TRANSACTION)
                .expect("the fenced writer's setting");
            let mut tx = writer.transaction().expect("tx");
            hold(&mut tx, 1).expect("epoch 1");
            let started = Instant::now();
            let mut b = LeaseClient::connect(&db.url, "b", short(5_000)).expect("b");
            let taken = loop {
                // Each try gives up after a period (its statement timeout); the standby tries
                // again, as it does every period.
                if let Ok(Some(epoch)) = b.acquire() {
                    break epoch;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "still held back"
                );
                if b.is_closed() {
                    b = LeaseClient::connect(&db.url, "b", short(5_000)).expect("b");
                }
            };
            assert_eq!(taken, 2);
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "{:?}",
                started.elapsed()
            );
            // The frozen session was ended: its commit cannot land.
            assert!(tx.commit().is_err());
        })
        .join()
        .expect("the test thread");
    }

    #[test]
    fn a_takeover_waits_for_the_commit_in_flight_and_fences_the_next() {
        std::thread::spawn(|| {
            let Some((db, mut writer)) = leased_db("lease_takeover_waits") else {
                return;
            };
            let mut a = LeaseClient::connect(&db.url, "a", short(100)).expect("a");
            assert_eq!(a.acquire().expect("acquire"), Some(1));
            std::thread::sleep(Duration::from_millis(200));
            writer
                .batch_execute("CREATE TABLE written (n BIGINT)")
                .expect("a table");
            // A commit of epoch 1 is in flight when b takes over.
            let mut tx = writer.transaction().expect("tx");
            hold(&mut tx, 1).expect("still epoch 1");
            tx.execute("INSERT INTO written VALUES (1)", &[])
                .expect("write");
            let url = db.url.clone();
            let takeover = std::thread::spawn(move || {
                let mut b = LeaseClient::connect(&url, "b", short(5_000)).expect("b");
                let started = Instant::now();
                (b.acquire().expect("acquire"), started.elapsed())
            });
            std::thread::sleep(Duration::from_millis(50));
            tx.commit().expect("the commit in flight lands");
            let (epoch, waited) = takeover.join().expect("takeover");
            assert_eq!(epoch, Some(2));
            assert!(waited >= Duration::from_millis(40), "waited {waited:?}");
            let mut tx = writer.transaction().expect("tx");
            assert!(matches!(hold(&mut tx, 1), Err(StoreError::Fenced { .. })));
        })
        .join()
        .expect("the test thread");
    }

    #[test]
    fn a_commit_stuck_behind_a_stalled_store_does_not_hold_its_own_renewal_back() {
        std::thread::spawn(|| {
            let Some((db, mut writer)) = leased_db("lease_renewal_beside_a_commit") else {
                return;
            };
            let mut a = LeaseClient::connect(&db.url, "a", short(5_000)).expect("a");
            assert_eq!(a.acquire().expect("acquire"), Some(1));
            // The holder's commit has passed its fence and waits (a locked table, a full
            // disk): its renewals must still go through, or a stalled store would cost the
            // instance its lease.
            let mut tx = writer.transaction().expect("tx");
            hold(&mut tx, 1).expect("epoch 1");
            let started = Instant::now();
            assert_eq!(a.renew(1).expect("a renewal beside the commit"), Some(1));
            assert!(started.elapsed() < Duration::from_millis(100));
            tx.commit().expect("the commit lands");
        })
        .join()
        .expect("the test thread");
    }
}
