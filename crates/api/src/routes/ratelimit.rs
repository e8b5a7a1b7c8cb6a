//! Fixed-window rate limits, in memory, per key (an IP, an account, a user).
//!
//! Per process: with several API processes the effective limit multiplies by their number,
//! which is acceptable for abuse protection (a shared store would be needed for quotas).

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
        entry.1 += 1;
        if entry.1 > limit {
            let retry_after = window.saturating_sub(now.duration_since(entry.0)).as_secs() + 1;
            return Err(ApiError::TooManyRequests { retry_after });
        }
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
