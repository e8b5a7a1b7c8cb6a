//! Prometheus metrics, hand-rolled (a few counters and one histogram do not need a crate):
//! request rate and errors by route and status, a latency histogram by route, and
//! projection lag read from the database at scrape time.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::AppState;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Request metrics of this process.
#[derive(Default)]
pub struct Metrics {
    /// (method, route, status) -> requests.
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    /// (method, route) -> latency.
    latency: Mutex<BTreeMap<(String, String), Histogram>>,
}

impl Metrics {
    fn record(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let key = (method.to_owned(), route.to_owned());
        {
            let mut requests = self
                .requests
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            *requests
                .entry((key.0.clone(), key.1.clone(), status))
                .or_default() += 1;
        }
        let seconds = elapsed.as_secs_f64();
        let mut latency = self
            .latency
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let histogram = latency.entry(key).or_default();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                histogram.counts[i] += 1;
            }
        }
        histogram.count += 1;
        histogram.sum += seconds;
    }

    /// The text exposition of the request metrics.
    fn render_requests(&self, out: &mut String) {
        let requests = self
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = writeln!(
            out,
            "# HELP trellis_http_requests_total HTTP requests by route and status."
        );
        let _ = writeln!(out, "# TYPE trellis_http_requests_total counter");
        for ((method, route, status), n) in requests.iter() {
            let _ = writeln!(
                out,
                "trellis_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        drop(requests);
        let latency = self
            .latency
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = writeln!(
            out,
            "# HELP trellis_http_request_duration_seconds Time to the response headers."
        );
        let _ = writeln!(
            out,
            "# TYPE trellis_http_request_duration_seconds histogram"
        );
        for ((method, route), h) in latency.iter() {
            let labels = format!("method=\"{method}\",route=\"{route}\"");
            for (i, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "trellis_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "trellis_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "trellis_http_request_duration_seconds_sum{{{labels}}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "trellis_http_request_duration_seconds_count{{{labels}}} {}",
                h.count
            );
        }
    }
}

/// Middleware recording every request under its route template (never the raw path, which
/// would explode label cardinality with ids).
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    state.metrics.record(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// `GET /metrics`.
pub async fn render(State(state): State<AppState>) -> Response {
    let mut out = String::new();
    state.metrics.render_requests(&mut out);
    match trellis_runtime::projection::status(&state.edge.pool).await {
        Ok(statuses) => {
            let _ = writeln!(
                out,
                "# HELP trellis_projection_lag_events Events in the store after the projection's last position."
            );
            let _ = writeln!(out, "# TYPE trellis_projection_lag_events gauge");
            for s in &statuses {
                let _ = writeln!(
                    out,
                    "trellis_projection_lag_events{{projection=\"{}\"}} {}",
                    s.projection, s.lag
                );
            }
            let _ = writeln!(out, "# TYPE trellis_projection_events_applied counter");
            for s in &statuses {
                let _ = writeln!(
                    out,
                    "trellis_projection_events_applied{{projection=\"{}\"}} {}",
                    s.projection, s.events_applied
                );
            }
        }
        Err(error) => tracing::warn!(%error, "metrics: projection status unavailable"),
    }
    // Read from the table, not the relay's in-process counters: the relay may run in another
    // process (`--roles relay`). Alert on `parked > 0`.
    match trellis_store_postgres::parked::counts(&state.edge.pool).await {
        Ok(counts) => {
            let _ = writeln!(
                out,
                "# HELP trellis_relay_parked_records Records the broker refused for good, set aside by the relay, by state."
            );
            let _ = writeln!(out, "# TYPE trellis_relay_parked_records gauge");
            for (label, n) in [
                ("parked", counts.parked),
                ("retry_requested", counts.retry_requested),
                ("republished", counts.republished),
            ] {
                let _ = writeln!(out, "trellis_relay_parked_records{{state=\"{label}\"}} {n}");
            }
        }
        Err(error) => tracing::warn!(%error, "metrics: parked relay records unavailable"),
    }
    Response::builder()
        .header("content-type", "text/plain; version=0.0.4")
        .body(out.into())
        .unwrap_or_default()
}
