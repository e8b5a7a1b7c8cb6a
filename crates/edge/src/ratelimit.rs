//! Fixed-window rate limits, in memory, per key (an IP, an account, a user).
//!
//! Per process: with several API processes the effective limit multiplies by their number,
//! which is acceptable for abuse protection (a shared store would be needed for quotas).
//!
//! Hand-rolled rather than `governor`: a governor limiter has one quota, fixed when it is
//! built, while these budgets are looked up per call (sign-ups per address, writes and
//! expensive units per user, each configured separately and changed by tests), charge a
//! variable number of units (an import is charged by its size), and must answer the exact
//! seconds until the window resets for `Retry-After`. A fixed window over a map is what
//! that takes; it is about sixty lines with its tests.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

use crate::error::ApiError;

/// Counts per key and window.
#[derive(Default)]
pub struct RateLimiter {
    windows: Mutex<HashMap<String, (Instant, u32)>>,
}

impl RateLimiter {
    /// Counts one hit on `key`; refuses past `limit` hits per `window`.
    ///
    /// # Errors
    /// 429 with the seconds until the window resets.
    pub fn hit(&self, key: &str, limit: u32, window: Duration) -> Result<(), ApiError> {
        self.spend(key, 1, limit, window)
    }

    /// Counts `cost` units on `key`; refuses when they would take the window past `limit`
    /// (a refused request spends nothing). A cost above the whole limit is charged as the
    /// limit: such a request passes only in a fresh window, never not at all.
    ///
    /// # Errors
    /// 429 with the seconds until the window resets.
    pub fn spend(
        &self,
        key: &str,
        cost: u32,
        limit: u32,
        window: Duration,
    ) -> Result<(), ApiError> {
        let cost = cost.min(limit.max(1));
        let now = Instant::now();
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if windows.len() > 100_000 {
            windows.retain(|_, (start, _)| now.duration_since(*start) < window);
        }
        let entry = windows.entry(key.to_owned()).or_insert((now, 0));
        if now.duration_since(entry.0) >= window {
            *entry = (now, 0);
        }
        if entry.1.saturating_add(cost) > limit {
            let retry_after = window.saturating_sub(now.duration_since(entry.0)).as_secs() + 1;
            return Err(ApiError::TooManyRequests { retry_after });
        }
        entry.1 += cost;
        Ok(())
    }
}

/// The client's address (the TCP peer; put a trusted proxy's header logic here if needed).
pub struct ClientIp(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or_else(|| "unknown".to_owned(), |c| c.0.ip().to_string());
        Ok(Self(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_are_charged_whole_and_a_refusal_spends_nothing() {
        let limits = RateLimiter::default();
        let minute = Duration::from_secs(60);
        limits.spend("k", 3, 5, minute).unwrap();
        // 3 + 3 > 5: refused, and the refusal leaves room for 2.
        assert!(matches!(
            limits.spend("k", 3, 5, minute),
            Err(ApiError::TooManyRequests { retry_after }) if (1..=61).contains(&retry_after)
        ));
        limits.spend("k", 2, 5, minute).unwrap();
        assert!(limits.hit("k", 5, minute).is_err());
        // Another key has its own window; a cost above the limit passes in a fresh one.
        limits.spend("other", 50, 5, minute).unwrap();
        assert!(limits.hit("other", 5, minute).is_err());
    }
}
