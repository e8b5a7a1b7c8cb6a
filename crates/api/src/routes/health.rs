//! `/healthz` (the process answers) and `/readyz` (its dependencies answer).

use std::time::Duration;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};

use crate::AppState;
use crate::error::ApiError;
use crate::openapi::{Health, Readiness};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(ready))
}

/// The process answers (no dependency is asked).
#[utoipa::path(get, path = "/healthz", tag = "ops", operation_id = "getHealth",
    responses((status = 200, description = "Alive", body = Health)))]
pub(crate) async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Ready when PostgreSQL (and the broker, in Kafka mode) answer.
#[utoipa::path(get, path = "/readyz", tag = "ops", operation_id = "getReadiness",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "A dependency is down"),
    ))]
pub(crate) async fn ready(State(state): State<AppState>) -> Result<Json<Readiness>, ApiError> {
    sqlx::query("SELECT 1").execute(&state.edge.pool).await?;
    let broker = match &state.edge.config.kafka_brokers {
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
    Ok(Json(Readiness {
        kafka: broker,
        postgres: "ok",
        status: "ready",
    }))
}
