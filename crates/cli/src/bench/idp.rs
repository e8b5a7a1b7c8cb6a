//! `trellis bench idp`: from a `CreateIdp` command to the plan showing `active` in the
//! `development_plans` read model, with the real recommender (MiniLM, follower, consumer) in
//! between, at a fixed command rate. Run it against a database of its own (see
//! `scripts/bench-recommender`): the follower folds the whole store on start.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use trellis_bus_kafka::KafkaSource;
use trellis_development::idp::{Idp, IdpCommand};
use trellis_development::resource::{Resource, ResourceCommand, ResourceKind};
use trellis_development::skill::{Skill, SkillCommand};
use trellis_development::{Level, SkillLevel};
use trellis_development_app::plans::DevelopmentPlans;
use trellis_kernel::{
    CommandContext, CommandHandler, Metadata, StreamId, SubscriptionOptions, TenantId, Upcasters,
};
use trellis_recommender_service::Recommender;
use trellis_runtime::projection::{self, ProjectionHandler};
use trellis_runtime::{ConsumerOptions, EventHandler, EventSource, StoreSource, spawn_consumer};
use uuid::Uuid;

use super::Transport;

use super::timed::{Sent, Timed, lock};

/// Runs the benchmark.
pub async fn run(
    url: &str,
    rate: u64,
    seconds: u64,
    resources: usize,
    transport: Transport,
    brokers: Option<String>,
) -> anyhow::Result<()> {
    let store = super::store(url, 16).await?;
    let pool = store.pool().clone();
    let tenant = TenantId::new();
    let context = CommandContext {
        metadata: Metadata {
            tenant_id: Some(tenant),
            ..Metadata::default()
        },
        ..CommandContext::default()
    };
    let commands = CommandHandler::new(Arc::clone(&store), Arc::new(Upcasters::new()));
    // A catalog: 100 skills, `resources` resources tagged with one to three of them.
    let skills: Vec<Uuid> = (0..100).map(|_| Uuid::now_v7()).collect();
    for (i, id) in skills.iter().enumerate() {
        let command = SkillCommand::Define {
            name: format!("Skill {i}"),
            description: format!("Practising skill number {i} at work"),
            aliases: vec![],
            esco_uri: None,
        };
        commands.handle::<Skill>(*id, &command, &context).await?;
    }
    for i in 0..resources {
        let taught: Vec<SkillLevel> = (0..1 + i % 3)
            .map(|j| SkillLevel {
                skill_id: skills[(i * 7 + j * 13) % skills.len()],
                level: Level::try_from(4u8).unwrap_or_else(|_| unreachable!()),
            })
            .collect();
        let mut seen = std::collections::HashSet::new();
        let taught: Vec<SkillLevel> = taught
            .into_iter()
            .filter(|t| seen.insert(t.skill_id))
            .collect();
        let command = ResourceCommand::Publish {
            title: format!("Resource {i}"),
            description: format!("Learn skill {} hands-on", i % skills.len()),
            url: None,
            kind: ResourceKind::Course,
            duration_minutes: 60,
            difficulty: Level::try_from(2u8)?,
            skills: taught,
            published_by: Uuid::now_v7(),
        };
        commands
            .handle::<Resource>(Uuid::now_v7(), &command, &context)
            .await?;
    }
    projection::ensure(&pool, &*store, &DevelopmentPlans).await?;

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let shutdown = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        }
    };
    let model = Arc::new(tokio::task::block_in_place(
        trellis_embed::MiniLm::load_default,
    )?);
    let recommender = Arc::new(Recommender::new(Arc::clone(&store), model));
    let follower = Arc::clone(&recommender);
    let follow = tokio::spawn({
        let shutdown = shutdown();
        async move { follower.follow(shutdown).await }
    });
    let run_id = Uuid::now_v7();
    let mut bench_kafka = None;
    let mut sources: Vec<Box<dyn EventSource>> = Vec::new();
    match transport {
        Transport::SingleNode => {
            for name in ["reaction.recommender", "projection.development_plans"] {
                sources.push(Box::new(
                    StoreSource::resume(
                        Arc::clone(&store),
                        pool.clone(),
                        name,
                        SubscriptionOptions::default(),
                    )
                    .await?,
                ));
            }
        }
        Transport::Kafka => {
            let kafka = super::bench_kafka(&store, brokers, format!("bench-{run_id}"), shutdown())?;
            let config = kafka.config.clone();
            bench_kafka = Some(kafka);
            for name in ["recommender", "plans"] {
                sources.push(Box::new(KafkaSource::new(
                    &config,
                    &format!("bench-{name}-{run_id}"),
                    &[config.topic("development")],
                )?));
            }
        }
    }
    let sent: Sent = Arc::default();
    let seen: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let timed = Arc::new(Timed {
        inner: ProjectionHandler::new(Arc::new(DevelopmentPlans), pool.clone()),
        sent: Arc::clone(&sent),
        seen: Arc::clone(&seen),
        done: |e| e.event_type == "IdpRecommendationsGenerated",
    });
    let mut sources = sources.into_iter();
    let mut consumers = Vec::new();
    for handler in [
        recommender as Arc<dyn EventHandler>,
        timed as Arc<dyn EventHandler>,
    ] {
        let source = sources.next().ok_or_else(|| anyhow::anyhow!("source"))?;
        consumers.push(spawn_consumer(source, handler, ConsumerOptions::default(), shutdown()).0);
    }

    let employee = Uuid::now_v7();
    let create = |i: u64| IdpCommand::Create {
        employee_id: employee,
        created_by: employee,
        title: format!("Plan {i}"),
        target_skills: (0..5)
            .map(|j| SkillLevel {
                skill_id: skills[((i as usize) * 3 + j * 11) % skills.len()],
                level: Level::try_from(4u8).unwrap_or_else(|_| unreachable!()),
            })
            .collect(),
        target_role: None,
        due_date: None,
    };
    // Warm-up: the follower folds the catalog (embedding it) and consumers join.
    let warm = Instant::now();
    loop {
        let stream = StreamId::new("idp", Uuid::now_v7())?;
        lock(&sent).insert(stream.id(), Instant::now());
        commands
            .handle::<Idp>(stream.id(), &create(0), &context)
            .await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        if !lock(&seen).is_empty() {
            break;
        }
        anyhow::ensure!(
            warm.elapsed() < Duration::from_secs(300),
            "pipeline did not warm up"
        );
    }
    let warm_s = warm.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(1)).await;
    lock(&seen).clear();
    lock(&sent).clear();

    let total = rate * seconds;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let started = tokio::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..total {
        tokio::time::sleep_until(started + interval.mul_f64(i as f64)).await;
        let stream = StreamId::new("idp", Uuid::now_v7())?;
        lock(&sent).insert(stream.id(), Instant::now());
        let (commands, context, command) = (commands.clone(), context.clone(), create(i + 1));
        tasks.spawn(async move {
            commands
                .handle::<Idp>(stream.id(), &command, &context)
                .await
        });
    }
    while let Some(result) = tasks.join_next().await {
        result??;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while (lock(&seen).len() as u64) < total && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop.send(true);
    for consumer in consumers {
        consumer.await?;
    }
    follow.await?;
    if let Some(kafka) = bench_kafka {
        kafka.relay.await??;
    }
    let mut latencies = lock(&seen).clone();
    latencies.sort_unstable();
    super::report(&serde_json::json!({
        "bench": "idp",
        "transport": format!("{transport:?}"),
        "resources": resources,
        "rate": rate,
        "plans": total,
        "observed": latencies.len(),
        "warm_up_s": (warm_s * 10.0).round() / 10.0,
        "p50_ms": super::quantile_ms(&latencies, 0.50),
        "p99_ms": super::quantile_ms(&latencies, 0.99),
        "max_ms": super::quantile_ms(&latencies, 1.0),
    }));
    Ok(())
}
