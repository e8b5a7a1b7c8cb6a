//! Brute-force protection for logins that does not hand an attacker a lock-out button.
//!
//! Only *failures* count, never successes or attempts. Three counters, each forgotten after
//! [`FORGET_AFTER`] without a new failure:
//! - per client address: past `per_ip` failures the address is refused outright (a spray
//!   across many accounts from one place);
//! - per account, from clients the account has never logged in from: past `per_account`
//!   failures each further attempt waits, doubling from 1 s up to [`MAX_BACKOFF`];
//! - per (account, client address) for clients that *have* logged in to the account before:
//!   the same progressive wait, counted on their own, so the owner's known client is not
//!   blocked by an attacker's failures from elsewhere.
//!
//! Hand-rolled rather than `governor`: governor meters rates of attempts, while this needs
//! failure counts with exponential back-off and a per-account memory of good clients.
//! In memory, per process (like [`trellis_edge::RateLimiter`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures older than this (since the last one) are forgotten.
pub const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
/// Longest wait between attempts once an account is backing off.
pub const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);
/// Entries kept before old ones are swept (memory bound under a spray of random keys).
const MAX_ENTRIES: usize = 200_000;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

#[derive(Default)]
struct Tables {
    by_ip: HashMap<String, Failures>,
    by_account: HashMap<String, Failures>,
    by_pair: HashMap<(String, String), Failures>,
    /// (account, client) pairs that logged in successfully, with when.
    known: HashMap<(String, String), Instant>,
}

/// The guard of one process.
#[derive(Default)]
pub struct LoginGuard {
    tables: Mutex<Tables>,
}

/// Thresholds (from [`trellis_edge::ApiConfig`]).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Failures per client address before it is refused.
    pub per_ip: u32,
    /// Failures per account (or per known pair) before back-off starts.
    pub per_account: u32,
}

fn live(entry: Option<&Failures>, now: Instant) -> Option<Failures> {
    entry
        .copied()
        .filter(|f| now.duration_since(f.last) < FORGET_AFTER)
}

/// Seconds to wait before the next attempt, if any.
fn backoff(failures: Option<Failures>, threshold: u32, now: Instant) -> Option<u64> {
    let f = failures?;
    if f.count < threshold {
        return None;
    }
    let exponent = (f.count - threshold).min(20);
    let wait = Duration::from_secs(1u64 << exponent).min(MAX_BACKOFF);
    let waited = now.duration_since(f.last);
    (waited < wait).then(|| (wait - waited).as_secs().max(1))
}

fn bump(entry: &mut Failures, now: Instant) {
    if now.duration_since(entry.last) >= FORGET_AFTER {
        entry.count = 0;
    }
    entry.count += 1;
    entry.last = now;
}

impl LoginGuard {
    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Before checking a password: `Err(retry_after_seconds)` when this attempt must wait.
    ///
    /// # Errors
    /// The seconds until an attempt may be made.
    pub fn check(&self, account: &str, ip: &str, limits: Limits, now: Instant) -> Result<(), u64> {
        let tables = self.lock();
        if let Some(f) = live(tables.by_ip.get(ip), now)
            && f.count >= limits.per_ip
        {
            let left = FORGET_AFTER.saturating_sub(now.duration_since(f.last));
            return Err(left.as_secs().max(1));
        }
        let pair = (account.to_owned(), ip.to_owned());
        let wait = if tables.known.contains_key(&pair) {
            backoff(
                live(tables.by_pair.get(&pair), now),
                limits.per_account,
                now,
            )
        } else {
            backoff(
                live(tables.by_account.get(account), now),
                limits.per_account,
                now,
            )
        };
        wait.map_or(Ok(()), Err)
    }

    /// A wrong password (or unknown account) from `ip`.
    pub fn failed(&self, account: &str, ip: &str, now: Instant) {
        let mut tables = self.lock();
        if tables.by_ip.len() + tables.by_account.len() + tables.by_pair.len() > MAX_ENTRIES {
            tables
                .by_ip
                .retain(|_, f| now.duration_since(f.last) < FORGET_AFTER);
            tables
                .by_account
                .retain(|_, f| now.duration_since(f.last) < FORGET_AFTER);
            tables
                .by_pair
                .retain(|_, f| now.duration_since(f.last) < FORGET_AFTER);
        }
        let fresh = Failures {
            count: 0,
            last: now,
        };
        bump(tables.by_ip.entry(ip.to_owned()).or_insert(fresh), now);
        bump(
            tables.by_account.entry(account.to_owned()).or_insert(fresh),
            now,
        );
        bump(
            tables
                .by_pair
                .entry((account.to_owned(), ip.to_owned()))
                .or_insert(fresh),
            now,
        );
    }

    /// A correct password from `ip`: the client becomes known to the account and its own
    /// failures are forgotten.
    pub fn succeeded(&self, account: &str, ip: &str, now: Instant) {
        let mut tables = self.lock();
        let pair = (account.to_owned(), ip.to_owned());
        tables.by_pair.remove(&pair);
        if tables.known.len() > MAX_ENTRIES {
            tables
                .known
                .retain(|_, at| now.duration_since(*at) < Duration::from_secs(30 * 24 * 3600));
        }
        tables.known.insert(pair, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        per_ip: 50,
        per_account: 5,
    };

    #[test]
    fn successes_never_count_and_failures_back_off_progressively() {
        let guard = LoginGuard::default();
        let t0 = Instant::now();
        for _ in 0..100 {
            assert!(guard.check("a@x", "1.1.1.1", LIMITS, t0).is_ok());
            guard.succeeded("a@x", "1.1.1.1", t0);
        }
        for _ in 0..5 {
            guard.failed("b@x", "2.2.2.2", t0);
        }
        // Fifth failure: wait 1 s, then 2 s after the sixth, 4 s after the seventh.
        assert_eq!(guard.check("b@x", "3.3.3.3", LIMITS, t0), Err(1));
        let t1 = t0 + Duration::from_secs(1);
        assert!(guard.check("b@x", "3.3.3.3", LIMITS, t1).is_ok());
        guard.failed("b@x", "3.3.3.3", t1);
        assert_eq!(guard.check("b@x", "3.3.3.3", LIMITS, t1), Err(2));
        guard.failed("b@x", "3.3.3.3", t1 + Duration::from_secs(2));
        assert_eq!(
            guard.check("b@x", "3.3.3.3", LIMITS, t1 + Duration::from_secs(2)),
            Err(4)
        );
        // Forgotten after a quiet quarter of an hour.
        assert!(
            guard
                .check(
                    "b@x",
                    "3.3.3.3",
                    LIMITS,
                    t1 + FORGET_AFTER + Duration::from_secs(3)
                )
                .is_ok()
        );
    }

    #[test]
    fn an_attacker_cannot_lock_the_owner_out_of_a_client_they_used_before() {
        let guard = LoginGuard::default();
        let t0 = Instant::now();
        guard.succeeded("owner@x", "10.0.0.1", t0);
        for _ in 0..30 {
            guard.failed("owner@x", "6.6.6.6", t0);
        }
        assert!(guard.check("owner@x", "6.6.6.6", LIMITS, t0).is_err());
        assert!(guard.check("owner@x", "7.7.7.7", LIMITS, t0).is_err());
        assert!(guard.check("owner@x", "10.0.0.1", LIMITS, t0).is_ok());
        // The owner's client still backs off on its own failures.
        for _ in 0..5 {
            guard.failed("owner@x", "10.0.0.1", t0);
        }
        assert!(guard.check("owner@x", "10.0.0.1", LIMITS, t0).is_err());
    }

    #[test]
    fn a_spraying_address_is_refused_for_every_account() {
        let guard = LoginGuard::default();
        let t0 = Instant::now();
        for i in 0..50 {
            guard.failed(&format!("user{i}@x"), "9.9.9.9", t0);
        }
        assert!(guard.check("fresh@x", "9.9.9.9", LIMITS, t0).is_err());
        assert!(guard.check("fresh@x", "8.8.8.8", LIMITS, t0).is_ok());
    }
}
