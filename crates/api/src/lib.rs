//! The HTTP edge of Trellis (SPEC §5).
//!
//! Handlers are thin: parse and validate input into domain values, call an application
//! service, map the result. Only [`ApiError`] knows HTTP statuses. Authentication is a JWT
//! access token checked by the [`Caller`](extract::Caller) extractor (which also checks the
//! user is still active); authorization lives in [`policy`].

pub mod auth;
pub mod config;
pub mod consistency;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod identity;
pub mod listener;
pub mod live;
pub mod login_guard;
pub mod metrics;
pub mod openapi;
pub mod policy;
mod routes;

pub use routes::RateLimiter;

use std::sync::Arc;

use axum::Router;
use sqlx::PgPool;
use trellis_kernel::{CommandHandler, EventStore};

pub use config::ApiConfig;
pub use error::ApiError;

/// Everything a handler may use.
#[derive(Clone)]
pub struct AppState {
    /// Command side.
    pub commands: CommandHandler<dyn EventStore>,
    /// Read models and sessions.
    pub pool: PgPool,
    /// Settings.
    pub config: Arc<ApiConfig>,
    /// Rate limits of this process.
    pub limits: Arc<routes::RateLimiter>,
    /// Failed-login memory of this process.
    pub login_guard: Arc<login_guard::LoginGuard>,
    /// Live updates for `/v1/me/events`.
    pub live: Arc<live::LiveHub>,
    /// Request metrics of this process.
    pub metrics: Arc<metrics::Metrics>,
    /// The context modules this process runs (audit folds, live-update ownership, kinds).
    pub modules: Arc<trellis_module::Modules>,
    /// ESCO occupations: target roles of IDPs.
    pub occupations: Arc<trellis_development::esco::Occupations>,
}

/// The whole API.
pub fn router(state: AppState) -> Router {
    routes::router(state)
}

impl AppState {
    /// State over a store and a pool. Starts the live-updates follower, so call it inside
    /// the runtime.
    pub fn new(store: Arc<dyn EventStore>, pool: PgPool, config: ApiConfig) -> Self {
        let modules = Arc::new(trellis_contexts::modules());
        // Usually installed by the process at start-up already; the first install wins.
        modules.install_upcasters();
        let kinds: Vec<&'static str> = modules.routes().into_iter().map(|(k, _)| k).collect();
        Self {
            live: live::LiveHub::start(Arc::clone(&store)),
            commands: CommandHandler::new(store, trellis_kernel::upcast::global())
                .with_kinds(kinds),
            modules,
            pool,
            config: Arc::new(config),
            limits: Arc::default(),
            login_guard: Arc::default(),
            metrics: Arc::default(),
            occupations: Arc::new(trellis_development_app::occupations::bundled_occupations()),
        }
    }
}

/// Serves the API on `listener` until `shutdown` resolves.
///
/// # Errors
/// I/O errors of the listener.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = state.config.connections;
    listener::serve(listener, router(state), limits, shutdown).await
}
