//! The HTTP edge of Trellis (SPEC §5): composition only (ADR 0011).
//!
//! Each context's routes and OpenAPI operations come from its module's HTTP slice (its
//! `<context>-app` crate, built on the edge kit `trellis-edge`); this crate merges them with
//! the platform routes (health, metrics, operator routes, audit, live updates, the OpenAPI
//! document) and wraps them in the layers every request passes: request ids and deadline,
//! problem+json for bare errors, idempotency keys, metrics, body limit, tracing.

pub mod idempotency;
pub mod listener;
pub mod live;
pub mod metrics;
pub mod openapi;
mod routes;

// The edge kit, under the names this crate always had.
pub use trellis_edge::{auth, config, consistency, error, extract, policy};

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use sqlx::PgPool;
use trellis_edge::{Edge, RateLimiter};
use trellis_kernel::{CommandHandler, EventStore};
use trellis_module::Modules;
use trellis_runtime::Commands;

pub use config::ApiConfig;
pub use error::ApiError;

/// The HTTP edge's own tables (idempotency keys), migrated by their owner (ADR 0011).
pub fn migrations() -> trellis_store_postgres::migrations::Owned {
    trellis_store_postgres::migrations::Owned::new("trellis-api", sqlx::migrate!("./migrations"))
}

/// Migrates everything a process serving `modules` uses: the event store, the consumer
/// runtime, every module's own tables and the HTTP edge's, each by its owner (ADR 0011).
///
/// # Errors
/// As [`trellis_store_postgres::PgEventStore::migrate_with`].
pub async fn migrate(
    store: &trellis_store_postgres::PgEventStore,
    modules: &Modules,
) -> Result<(), trellis_kernel::StoreError> {
    let mut owners = vec![trellis_runtime::migrations()];
    owners.extend(modules.migrations());
    owners.push(migrations());
    store.migrate_with(owners).await
}

/// Everything the platform's handlers and layers use; each context's slice reaches only
/// the [`Edge`] part.
#[derive(Clone)]
pub struct AppState {
    /// The edge kit's state: commands, read models, settings, budgets, sessions.
    pub edge: Edge,
    /// Live updates for `/v1/me/events`.
    pub live: Arc<live::LiveHub>,
    /// Request metrics of this process.
    pub metrics: Arc<metrics::Metrics>,
    /// The context modules this process runs (routes, audit folds, live-update ownership).
    pub modules: Arc<Modules>,
    /// The OpenAPI document of every route served, and the commands it names.
    pub document: Arc<openapi::Document>,
}

impl FromRef<AppState> for Edge {
    fn from_ref(state: &AppState) -> Self {
        state.edge.clone()
    }
}

/// The whole API.
pub fn router(state: AppState) -> Router {
    routes::router(state)
}

impl AppState {
    /// State over a store and a pool, serving `modules`. Starts the live-updates follower,
    /// so call it inside the runtime.
    pub fn new(
        store: Arc<dyn EventStore>,
        pool: PgPool,
        config: ApiConfig,
        modules: Arc<Modules>,
    ) -> Self {
        // Usually installed by the process at start-up already; the first install wins.
        modules.install_upcasters();
        let kinds: Vec<&'static str> = modules.routes().into_iter().map(|(k, _)| k).collect();
        let handler = CommandHandler::new(Arc::clone(&store), trellis_kernel::upcast::global())
            .with_kinds(kinds);
        let config = Arc::new(config);
        let edge = Edge {
            commands: Commands::new(handler, pool.clone(), config.max_read_wait),
            sessions: modules.sessions(pool.clone()),
            searchables: modules.searchables(&pool),
            pool,
            config,
            limits: Arc::new(RateLimiter::default()),
        };
        Self {
            live: live::LiveHub::start(store, Arc::clone(&modules)),
            document: Arc::new(openapi::Document::of(&modules)),
            modules,
            edge,
            metrics: Arc::default(),
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
    let limits = state.edge.config.connections;
    listener::serve(listener, router(state), limits, shutdown).await
}
