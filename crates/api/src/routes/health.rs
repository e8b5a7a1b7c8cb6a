//! `/healthz` (the process answers) and `/readyz` (its dependencies answer).

use std::time::Duration;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};

use crate::AppState;
use crate::error::ApiError;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/healthz",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
        .route("/readyz", get(ready))
}

/// Ready when PostgreSQL (and the broker, in Kafka mode) answer.
#[utoipa::path(get, path = "/readyz", tag = "ops",
    responses(
        (status = 200, description = "Ready", body = serde_json::Value),
        (status = 503, description = "A dependency is down", body = crate::openapi::Problem),
    ))]
pub(crate) async fn ready(
    State(state): State<AppState>,
) -> Result<Json<serde_json::Value>, ApiError> {
    sqlx::query("SELECT 1").execute(&state.pool).await?;
    let broker = match &state.config.kafka_brokers {
        None => "single-node",
        Some(brokers) => {
            // Reachable = some bootstrap broker accepts a TCP connection within a second.
            let mut reachable = false;
            for address in brokers.split(',').map(str::trim) {
                let connect = tokio::net::TcpStream::connect(address);
                if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(1), connect).await {
                    reachable = true;
                    break;
                }
            }
            if !reachable {
                return Err(ApiError::Unavailable("no Kafka broker is reachable".into()));
            }
            "ok"
        }
    };
    Ok(Json(
        serde_json::json!({"status": "ready", "postgres": "ok", "kafka": broker}),
    ))
}
