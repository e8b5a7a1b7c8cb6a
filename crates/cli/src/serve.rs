//! `trellis serve`: the relay, projectors and reactive services of this process.
//!
//! With `KAFKA_BROKERS` set, the relay publishes the store to Kafka and every consumer is a
//! Kafka consumer-group member, so each role scales out by running more processes with
//! `--roles`. Without it (single-node mode) the same handlers run on in-process
//! subscriptions to the store's `$all`. The HTTP API joins this command with the API issue.

use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use tokio::sync::watch;
use trellis_bus_kafka::{KafkaConfig, KafkaSource, Relay, RelayOptions, Routing};
use trellis_kernel::SubscriptionOptions;
use trellis_runtime::projection::{self, Projection, ProjectionHandler};
use trellis_runtime::{ConsumerOptions, EventHandler, EventSource, StoreSource, spawn_consumer};

/// The platform's roles; every context module's reactive service is a role too, under its
/// own name (`recommender`).
const PLATFORM_ROLES: [&str; 5] = ["api", "relay", "projections", "reactions", "sealer"];

/// Options of `trellis serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Kafka bootstrap servers (else `KAFKA_BROKERS` from the environment or the
    /// `TRELLIS_CONFIG` file); unset means single-node mode.
    #[arg(long)]
    kafka_brokers: Option<String>,
    /// Topic prefix (else `TRELLIS_TOPIC_PREFIX`, else `trellis.`).
    #[arg(long)]
    topic_prefix: Option<String>,
    /// Roles to run: `api`, `relay` (Kafka mode only), `projections`, `reactions` (light
    /// reactive services; none in the product today, kept so deployments keep their role
    /// lists), `sealer` (seals the log into hash chains, docs/auditing.md) and each context's
    /// reactive service by name (`recommender`). Default: all.
    #[arg(long, value_delimiter = ',')]
    roles: Vec<String>,
}

/// The roles to run: all by default; an unknown name is an error listing the known ones.
fn roles(asked: &[String], modules: &trellis_module::Modules) -> anyhow::Result<Vec<String>> {
    let known: Vec<&str> = PLATFORM_ROLES
        .into_iter()
        .chain(modules.services().map(|s| s.name))
        .collect();
    if asked.is_empty() {
        return Ok(known.into_iter().map(str::to_owned).collect());
    }
    for role in asked {
        if !known.contains(&role.as_str()) {
            anyhow::bail!("unknown role `{role}`; the roles are {}", known.join(", "));
        }
    }
    Ok(asked.to_vec())
}

/// Every projection Trellis has, with the contexts (topics) it reads: from the context
/// modules (ADR 0011), so a new context's read models are served without touching this file.
pub fn projections() -> Vec<(Arc<dyn Projection>, Vec<&'static str>)> {
    trellis_contexts::modules().projections()
}

/// Runs until Ctrl-C, then drains.
pub async fn run(url: &str, args: ServeArgs) -> anyhow::Result<()> {
    // The edge's settings first: a missing or weak signing key stops the process before it
    // does anything else.
    // One layering for the whole binary: flags, then the environment, then TRELLIS_CONFIG.
    let settings = trellis_api::config::Settings::from_env()?;
    let kafka_brokers = args
        .kafka_brokers
        .clone()
        .or_else(|| settings.get("KAFKA_BROKERS"))
        .filter(|b| !b.trim().is_empty());
    let topic_prefix = args
        .topic_prefix
        .clone()
        .or_else(|| settings.get("TRELLIS_TOPIC_PREFIX"))
        .unwrap_or_else(|| "trellis.".to_owned());
    // Built once: routing, projections, services, migrations and the API all read it.
    let modules = Arc::new(trellis_contexts::modules());
    let roles = roles(&args.roles, &modules)?;
    let runs = |role: &str| roles.iter().any(|r| r == role);
    let api_config = if runs("api") {
        Some(trellis_api::ApiConfig::from_env().context(
            "the API's configuration is unusable (see README, \"Running in production\")",
        )?)
    } else {
        None
    };
    let store = Arc::new(crate::connect(url, 16).await?);
    trellis_api::migrate(&store, &modules)
        .await
        .context("migrating")?;
    let pool = store.pool().clone();
    // Upcast and decrypted on every read; personal fields encrypted on every append.
    crate::install_readers(&modules, &pool, &settings)?;
    let (stop, stopped) = watch::channel(false);
    let shutdown = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        }
    };
    let kafka = kafka_brokers.as_ref().map(|brokers| {
        let mut config = KafkaConfig::new(brokers.clone());
        config.topic_prefix = topic_prefix.clone();
        config
    });
    let routing = Routing::from_routes(modules.routes());
    let mut tasks = tokio::task::JoinSet::new();

    if let (Some(config), true) = (&kafka, runs("relay")) {
        let relay = Relay::new(
            Arc::clone(&store),
            pool.clone(),
            config.clone(),
            routing.clone(),
            RelayOptions::default(),
        )?;
        let shutdown = shutdown();
        tasks.spawn(async move { relay.run(shutdown).await.map_err(anyhow::Error::from) });
    }

    if runs("sealer") {
        let (pool, shutdown) = (pool.clone(), shutdown());
        tasks.spawn(async move {
            trellis_store_postgres::chain::run_sealer(pool, shutdown).await;
            Ok(())
        });
    }

    let mut handlers: Vec<(Arc<dyn EventHandler>, Vec<&str>)> = Vec::new();
    if runs("projections") {
        for (p, contexts) in modules.projections() {
            projection::ensure(&pool, &*store, &*p).await?;
            handlers.push((Arc::new(ProjectionHandler::new(p, pool.clone())), contexts));
        }
    }
    // Each context's reactive services, as their modules declare them (ADR 0011).
    for service in modules.services().filter(|s| runs(s.name)) {
        let shutdown = shutdown.clone();
        let deps = trellis_module::ServiceDeps {
            store: Arc::clone(&store) as _,
            pool: pool.clone(),
            shutdown: Arc::new(move || Box::pin(shutdown())),
            settings: {
                let settings = settings.clone();
                Arc::new(move |name: &str| settings.get(name))
            },
        };
        let started = (service.start)(deps)
            .await
            .with_context(|| format!("starting the {} service", service.name))?;
        for task in started.tasks {
            tasks.spawn(task);
        }
        handlers.push((started.handler, service.reads.to_vec()));
    }
    for (handler, contexts) in handlers {
        let source: Box<dyn EventSource> = match &kafka {
            Some(config) => {
                let topics: Vec<String> = contexts.iter().map(|c| config.topic(c)).collect();
                Box::new(KafkaSource::new(config, handler.name(), &topics)?)
            }
            None => Box::new(
                StoreSource::resume(
                    Arc::clone(&store),
                    pool.clone(),
                    handler.name(),
                    SubscriptionOptions::default(),
                )
                .await?,
            ),
        };
        let (consumer, _stats) =
            spawn_consumer(source, handler, ConsumerOptions::default(), shutdown());
        tasks.spawn(async move {
            consumer.await?;
            Ok(())
        });
    }
    if let Some(config) = api_config {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        tracing::info!(listen = %config.listen, "API listening");
        let state = trellis_api::AppState::new(
            Arc::clone(&store) as _,
            pool.clone(),
            config,
            Arc::clone(&modules),
        );
        let shutdown = shutdown();
        tasks.spawn(async move {
            trellis_api::serve(listener, state, shutdown)
                .await
                .map_err(anyhow::Error::from)
        });
    }
    tracing::info!(
        mode = if kafka.is_some() { "kafka" } else { "single-node" },
        roles = ?roles,
        "serving"
    );
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    tracing::info!("shutting down: draining in-flight work");
    let _ = stop.send(true);
    while let Some(result) = tasks.join_next().await {
        result??;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::projections;

    #[test]
    fn serve_builds_every_read_model_the_api_reads() {
        // The API queries these schemas directly; a projection missing here is a 503 at run
        // time (schemathesis found exactly that once).
        let names: Vec<&str> = projections().iter().map(|(p, _)| p.name()).collect();
        for needed in ["identity_users", "development_catalog", "development_plans"] {
            assert!(names.contains(&needed), "{needed} is not served");
        }
        // The demo tally is a test fixture, not product (ADR 0011).
        assert!(!names.contains(&"tally_totals"));
    }
}
