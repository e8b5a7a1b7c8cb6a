//! The context-module seam (ADR 0011): audit folds every aggregate kind of every context,
//! stream kinds no module declares fail loudly, and one upcaster registry serves every read
//! path.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use trellis_kernel::{
    EventStore, ExpectedVersion, Metadata, NewEvent, RecordedEvent, StreamId, TenantId,
};
use trellis_runtime::projection::{Projection, ProjectionError, ProjectionHandler};
use trellis_runtime::{ConsumerOptions, EventHandler, HandlerError};
use trellis_tests::*;

/// An organization with a stream of every product aggregate kind; returns the admin's
/// token and the app.
async fn everything(app: &TestApp) -> String {
    let (organization_id, admin_id, admin_email) = app.sign_up("Every kind").await;
    let admin = app.token(&admin_email).await;
    let (manager_id, manager_email) = app.create_user(&admin, &["manager"], None).await;
    let (employee_id, employee_email) = app
        .create_user(&admin, &["employee"], Some(&manager_id))
        .await;
    let manager = app.token(&manager_email).await;
    let employee = app.token(&employee_email).await;
    let skill = app
        .post(
            "/v1/skills",
            Some(&admin),
            json!({"name": "SQL", "description": "Querying relational data"}),
        )
        .await;
    assert_eq!(skill.status(), 201);
    let skill = json_of(skill).await["id"].as_str().unwrap().to_owned();
    let resource = app
        .post(
            "/v1/resources",
            Some(&admin),
            json!({"title": "SQL basics", "description": "A course", "kind": "course",
                   "duration_minutes": 60, "difficulty": 2,
                   "skills": [{"skill_id": skill, "level": 2}]}),
        )
        .await;
    assert_eq!(resource.status(), 201, "{:?}", resource.text().await);
    let review = app
        .post(
            "/v1/reviews",
            Some(&manager),
            json!({"employee_id": employee_id, "period": "2026-H2",
                   "ratings": [{"skill_id": skill, "level": 1}], "feedback": "Good start"}),
        )
        .await;
    assert_eq!(review.status(), 201, "{:?}", review.text().await);
    let idp = app
        .post(
            "/v1/idps",
            Some(&employee),
            json!({"employee_id": employee_id, "title": "Grow",
                   "target_skills": [{"skill_id": skill, "target_level": 3}]}),
        )
        .await;
    assert_eq!(idp.status(), 202, "{:?}", idp.text().await);
    let declared = app
        .post(
            "/v1/users/me/skills",
            Some(&employee),
            json!({"skill_id": skill, "level": 2}),
        )
        .await;
    assert_eq!(declared.status(), 201, "{:?}", declared.text().await);
    // The content context has its domain and module but no upload endpoint yet (issue
    // "Content and the atomizer"): its stream is written through the command handler, as
    // the upload will.
    upload_content(app, &organization_id, &admin_id).await;
    let (_, learner_email) = app.create_user(&admin, &["learner"], None).await;
    let learner = app.token(&learner_email).await;
    let pool = app
        .post(
            "/v1/cohorts/pools",
            Some(&admin),
            json!({"name": "SQL cohort", "group_size": {"min": 2, "max": 3},
                   "criteria": [{"attribute": "skills", "mode": "diverse", "weight": 1.0}],
                   "batch": {"min_queue": 2, "max_wait_seconds": 600}}),
        )
        .await;
    assert_eq!(pool.status(), 201, "{:?}", pool.text().await);
    let pool = json_of(pool).await["id"].as_str().unwrap().to_owned();
    let joined = app
        .post(
            &format!("/v1/cohorts/pools/{pool}/queue"),
            Some(&learner),
            json!({"skills": [{"skill_id": skill, "level": 2}], "goals": "Learn SQL",
                   "timezone": "UTC",
                   "availability": [{"day": "tue", "start": "09:00", "end": "10:00"}]}),
        )
        .await;
    assert_eq!(joined.status(), 202, "{:?}", joined.text().await);
    let hooked = app
        .post(
            &format!("/v1/cohorts/pools/{pool}/webhooks"),
            Some(&admin),
            json!({"url": "https://hooks.example.com/trellis"}),
        )
        .await;
    assert_eq!(hooked.status(), 201, "{:?}", hooked.text().await);
    // No matcher runs here (these apps run projections only): a group's stream is written
    // through the command handler, as the matcher writes it.
    open_group(app, &organization_id, &admin_id, &pool).await;
    admin
}

async fn open_group(app: &TestApp, organization_id: &str, admin_id: &str, pool: &str) {
    use trellis_cohorts::group::{CohortGroup, GroupCommand};
    use trellis_cohorts::pool::Member;
    let organization = uuid::Uuid::parse_str(organization_id).unwrap();
    let admin = uuid::Uuid::parse_str(admin_id).unwrap();
    let command = GroupCommand::Open {
        pool_id: uuid::Uuid::parse_str(pool).unwrap(),
        batch_id: uuid::Uuid::now_v7(),
        members: vec![Member {
            ticket_id: uuid::Uuid::now_v7(),
            learner_id: admin,
        }],
    };
    handler(app)
        .handle::<CohortGroup>(
            uuid::Uuid::now_v7(),
            &command,
            &context_of(organization, admin),
        )
        .await
        .unwrap();
}

fn context_of(organization: uuid::Uuid, actor: uuid::Uuid) -> trellis_kernel::CommandContext {
    trellis_kernel::CommandContext {
        metadata: trellis_kernel::Metadata {
            actor_id: Some(trellis_kernel::ActorId::from_uuid(actor)),
            tenant_id: Some(trellis_kernel::TenantId::from_uuid(organization)),
            ..trellis_kernel::Metadata::default()
        },
        ..trellis_kernel::CommandContext::default()
    }
}

fn handler(app: &TestApp) -> trellis_kernel::CommandHandler<dyn trellis_kernel::EventStore> {
    trellis_kernel::CommandHandler::new(
        Arc::clone(&app.store) as Arc<dyn trellis_kernel::EventStore>,
        trellis_kernel::upcast::global(),
    )
}

async fn upload_content(app: &TestApp, organization_id: &str, admin_id: &str) {
    use trellis_content::content::{Content, ContentCommand};
    use trellis_content::{ContentMetadata, MediaType, StoredFile};
    let organization = uuid::Uuid::parse_str(organization_id).unwrap();
    let admin = uuid::Uuid::parse_str(admin_id).unwrap();
    let sha256 = "ab".repeat(32);
    let command = ContentCommand::Upload {
        title: "Ownership in Rust".into(),
        file: StoredFile {
            key: StoredFile::key_of(&sha256),
            sha256,
            size: 42,
            media_type: MediaType::Markdown,
            filename: Some("ownership.md".into()),
        },
        metadata: ContentMetadata::default(),
        uploaded_by: admin,
    };
    handler(app)
        .handle::<Content>(
            uuid::Uuid::now_v7(),
            &command,
            &context_of(organization, admin),
        )
        .await
        .unwrap();
}

/// The audit of the first stream of `kind`: its state must be the aggregate's fold, not null.
async fn audit_folds(kind: &str) {
    let app = spawn_app().await;
    let admin = everything(&app).await;
    let events = app.store.read_all(None, 10_000).await.unwrap();
    let stream = events
        .iter()
        .map(|e| e.stream_id.clone())
        .find(|s| s.kind() == kind)
        .unwrap_or_else(|| panic!("no {kind} stream was written"));
    let audit = app
        .get(&format!("/v1/audit/streams/{stream}"), Some(&admin))
        .await;
    assert_eq!(audit.status(), 200, "{:?}", audit.text().await);
    let body = json_of(audit).await;
    assert!(
        body["state"].is_object() && !body["state"].as_object().unwrap().is_empty(),
        "{kind}: {body}"
    );
}

#[test]
fn every_product_kind_has_an_audit_test_below() {
    let tested = [
        "organization",
        "user",
        "email_claim",
        "skill",
        "resource",
        "review",
        "idp",
        "skill_profile",
        "content",
        "cohort_pool",
        "cohort_group",
        "cohort_webhooks",
    ];
    let declared: Vec<&str> = trellis_contexts::modules()
        .routes()
        .into_iter()
        .map(|(kind, _)| kind)
        .collect();
    for kind in &declared {
        assert!(tested.contains(kind), "add an audit test for `{kind}`");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_folds_cohort_pool_streams() {
    audit_folds("cohort_pool").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_folds_cohort_group_streams() {
    audit_folds("cohort_group").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_folds_cohort_webhooks_streams() {
    audit_folds("cohort_webhooks").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_folds_organization_streams() {
    audit_folds("organization").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_folds_user_streams() {
    audit_folds("user").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_folds_email_claim_streams() {
    audit_folds("email_claim").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_folds_skill_streams() {
    audit_folds("skill").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_folds_resource_streams() {
    audit_folds("resource").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_folds_review_streams() {
    audit_folds("review").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_folds_idp_streams() {
    audit_folds("idp").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_folds_skill_profile_streams() {
    audit_folds("skill_profile").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_folds_content_streams() {
    audit_folds("content").await;
}

// --- unknown kinds fail loudly --------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_kind_no_module_declares_is_parked_naming_it_and_the_rest_flows() {
    let cluster = trellis_bus_kafka::DevCluster::start(1, &kafka_config(""), &routing()).unwrap();
    let config = kafka_config(&cluster.bootstrap_servers());
    let store = fresh_pg_store(4).await;
    let stop = Stop::new();
    let tenant = TenantId::new();
    let event = |kind: &str| {
        let stream = StreamId::new(kind, uuid::Uuid::now_v7()).unwrap();
        let new = NewEvent::new(
            "TallyOpened",
            1,
            json!({"name": "t"}),
            Metadata {
                tenant_id: Some(tenant),
                ..Metadata::default()
            },
        )
        .unwrap();
        (stream, new)
    };
    let (mystery, odd) = event("mystery");
    let (tally, ok) = event("tally");
    store
        .append(
            &mystery,
            ExpectedVersion::NoStream,
            vec![odd],
            Default::default(),
        )
        .await
        .unwrap();
    store
        .append(
            &tally,
            ExpectedVersion::NoStream,
            vec![ok],
            Default::default(),
        )
        .await
        .unwrap();
    spawn_relay(&store, &config, stop.signal());
    wait_until(Duration::from_secs(20), "the mystery record parked", || {
        let pool = store.pool().clone();
        async move {
            !trellis_store_postgres::parked::list(&pool, None, 10)
                .await
                .unwrap()
                .is_empty()
        }
    })
    .await;
    let parked = trellis_store_postgres::parked::list(store.pool(), None, 10)
        .await
        .unwrap();
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].stream_id, mystery.to_string());
    assert!(
        parked[0]
            .error
            .contains("no context module declares the stream kind `mystery`"),
        "{}",
        parked[0].error
    );
    stop.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_handler_refuses_an_aggregate_no_module_declares() {
    let store = fresh_pg_store(2).await;
    let handler =
        trellis_kernel::CommandHandler::new(Arc::clone(&store), trellis_kernel::upcast::global())
            .with_kinds(["user", "idp"]);
    let refused = handler
        .handle::<trellis_demo::Tally>(
            uuid::Uuid::now_v7(),
            &trellis_demo::TallyCommand::Open { name: "t".into() },
            &Default::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        refused.to_string(),
        "no context module declares the stream kind `tally`"
    );
    assert!(store.read_all(None, 10).await.unwrap().is_empty());
}

// --- one upcaster registry for every read path --------------------------------------------

/// A projection recording the schema version and the v2-only field of what it applies.
struct Seen;

#[async_trait]
impl Projection for Seen {
    fn name(&self) -> &'static str {
        "upcast_probe"
    }
    fn version(&self) -> i32 {
        1
    }
    fn event_types(&self) -> &'static [&'static str] {
        &["SkillDeclared"]
    }
    fn schema_sql(&self) -> &'static str {
        "CREATE TABLE seen (schema_version int NOT NULL, source text);"
    }
    async fn apply(
        &self,
        conn: &mut sqlx::PgConnection,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        for event in events {
            sqlx::query("INSERT INTO seen VALUES ($1, $2)")
                .bind(event.schema_version as i32)
                .bind(event.payload["source"].as_str())
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }
}

/// A reaction recording what it is handed.
#[derive(Default)]
struct Witness(Mutex<Vec<(u32, Option<String>)>>);

#[async_trait]
impl EventHandler for Witness {
    fn name(&self) -> &str {
        "upcast-witness"
    }
    fn wants(&self, event_type: &str) -> bool {
        event_type == "SkillDeclared"
    }
    async fn handle(&self, events: &[RecordedEvent]) -> Result<(), HandlerError> {
        let mut seen = self.0.lock().unwrap();
        for event in events {
            seen.push((
                event.schema_version,
                event.payload["source"].as_str().map(str::to_owned),
            ));
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_v1_event_is_seen_as_v2_by_projections_reactions_and_audit() {
    // SkillDeclared v2 (for this test only) adds `source`; v1 events upcast to it.
    let registry =
        trellis_contexts::with_fixture()
            .upcasters()
            .with("SkillDeclared", 1, |mut payload| {
                payload["source"] = json!("declared");
                Ok(payload)
            });
    assert!(trellis_kernel::upcast::install(registry), "installed first");

    let app = spawn_app().await;
    let (org, admin_id, admin_email) = app.sign_up("Upcasting").await;
    let admin = app.token(&admin_email).await;
    // A v1 event as stored before the change.
    let user: uuid::Uuid = admin_id.parse().unwrap();
    let stream = StreamId::new("skill_profile", user).unwrap();
    let v1 = NewEvent::new(
        "SkillDeclared",
        1,
        json!({"skill_id": uuid::Uuid::now_v7(), "level": 3}),
        Metadata {
            tenant_id: Some(TenantId::from_uuid(org.parse().unwrap())),
            actor_id: Some(trellis_kernel::ActorId::from_uuid(user)),
            ..Metadata::default()
        },
    )
    .unwrap();
    app.store
        .append(
            &stream,
            ExpectedVersion::NoStream,
            vec![v1],
            Default::default(),
        )
        .await
        .unwrap();

    // A projection, through the consumer runtime.
    let stop = Stop::new();
    let projection = Arc::new(Seen);
    trellis_runtime::projection::ensure(app.store.pool(), &*app.store, &*projection)
        .await
        .unwrap();
    let handler: Arc<dyn EventHandler> =
        Arc::new(ProjectionHandler::new(projection, app.store.pool().clone()));
    let source = source_for(&app.transport, &app.store, handler.name(), &["career"]).await;
    trellis_runtime::spawn_consumer(source, handler, ConsumerOptions::default(), stop.signal());
    // A reaction, through the same runtime.
    let witness = Arc::new(Witness::default());
    let source = source_for(&app.transport, &app.store, witness.name(), &["career"]).await;
    trellis_runtime::spawn_consumer(
        source,
        Arc::clone(&witness) as Arc<dyn EventHandler>,
        ConsumerOptions::default(),
        stop.signal(),
    );
    let pool = app.store.pool().clone();
    wait_until(Duration::from_secs(20), "the projection applied it", || {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM rm_upcast_probe.seen")
                .fetch_one(&pool)
                .await
                .unwrap()
                > 0
        }
    })
    .await;
    let row: (i32, Option<String>) =
        sqlx::query_as("SELECT schema_version, source FROM rm_upcast_probe.seen")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(row, (2, Some("declared".into())));
    wait_until(Duration::from_secs(10), "the reaction saw it", || {
        let witness = Arc::clone(&witness);
        async move { !witness.0.lock().unwrap().is_empty() }
    })
    .await;
    assert_eq!(
        witness.0.lock().unwrap()[0],
        (2, Some("declared".to_owned()))
    );

    // The audit endpoint.
    let audit = json_of(
        app.get(&format!("/v1/audit/streams/{stream}"), Some(&admin))
            .await,
    )
    .await;
    assert_eq!(audit["events"][0]["schema_version"], 2, "{audit}");
    assert_eq!(audit["events"][0]["payload"]["source"], "declared");
    assert!(audit["state"].is_object(), "{audit}");
    stop.stop();
}

// --- each context on its own topic ----------------------------------------------------------

/// The store's `$all` once it shows events of every product context: `$all` stops below the
/// oldest transaction still open (a projection's batch, say), so a read right after the
/// writes may not reach the last of them yet.
async fn every_contexts_events(
    app: &TestApp,
    modules: &trellis_module::Modules,
) -> Vec<RecordedEvent> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let events = app.store.read_all(None, 10_000).await.unwrap();
        let complete = modules.iter().all(|m| {
            events
                .iter()
                .any(|e| modules.context_of(e.stream_id.kind()).ok() == Some(m.name))
        });
        if complete || tokio::time::Instant::now() > deadline {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until every product context's events in `events` are on its topic (each context
/// must have written some); returns what each topic holds, by key.
async fn published_by_context(
    config: &trellis_bus_kafka::KafkaConfig,
    events: &[RecordedEvent],
    modules: &trellis_module::Modules,
) -> Vec<(&'static str, std::collections::HashMap<String, Vec<u64>>)> {
    let mut published = Vec::new();
    for context in modules.iter().map(|m| m.name) {
        let want: std::collections::HashSet<trellis_kernel::EventId> = events
            .iter()
            .filter(|e| modules.context_of(e.stream_id.kind()).unwrap() == context)
            .map(|e| e.event_id)
            .collect();
        assert!(!want.is_empty(), "{context} wrote nothing");
        let per_key = crate::bus_faults::read_topic(config, &config.topic(context), &want).await;
        published.push((context, per_key));
    }
    published
}

/// Every product context's events reach `trellis.<context>` (and only that topic) through the
/// relay; identity's and development's projections catching up through Kafka are shown by
/// `api_identity::the_api_works_end_to_end_through_kafka` and
/// `api_idps::an_idp_gets_recommendations_through_kafka_that_cover_its_gaps`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_contexts_events_arrive_on_its_own_topic() {
    let (_cluster, app) = spawn_kafka_app().await;
    let admin = everything(&app).await;
    assert!(!admin.is_empty());
    let Transport::Kafka(config) = &app.transport else {
        unreachable!("a Kafka app")
    };
    let modules = trellis_contexts::modules();
    let events = every_contexts_events(&app, &modules).await;
    for (context, per_key) in published_by_context(config, &events, &modules).await {
        for key in per_key.keys() {
            let kind = StreamId::parse(key).unwrap();
            assert_eq!(modules.context_of(kind.kind()).unwrap(), context, "{key}");
        }
    }
}

// --- an outside consumer ------------------------------------------------------------------

/// The Python interpreter of the outside consumer's virtual environment (`scripts/setup`
/// installs kafka-python, the CloudEvents SDK and jsonschema there).
fn outside_python() -> std::path::PathBuf {
    if let Ok(python) = std::env::var("TRELLIS_OUTSIDE_PYTHON") {
        return python.into();
    }
    let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../.trellis/outside-venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/setup (or scripts/test), which installs the outside \
         consumer's clients",
        python.display()
    );
    python
}

/// Another team's consumer, written with public clients only (kafka-python and the
/// CloudEvents SDK, `scripts/outside_consumer.py`), reads every product topic from the
/// beginning and finds only product events, each on its context's topic and valid against
/// `events/<context>/<Type>.v<N>.json`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outside_consumer_finds_only_product_events_each_valid_against_its_schema() {
    let (_cluster, app) = spawn_kafka_app().await;
    everything(&app).await;
    let Transport::Kafka(config) = &app.transport else {
        unreachable!("a Kafka app")
    };
    let modules = trellis_contexts::modules();
    let events = every_contexts_events(&app, &modules).await;
    // Wait until the relay has published everything written so far.
    published_by_context(config, &events, &modules).await;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut consumer = std::process::Command::new(outside_python());
    consumer
        .arg(root.join("scripts/outside_consumer.py"))
        .args(["--brokers", &config.brokers])
        .args(["--prefix", &config.topic_prefix])
        .arg("--events")
        .arg(root.join("events"))
        .args(["--expect", &events.len().to_string(), "--timeout", "90"]);
    let output = tokio::task::spawn_blocking(move || consumer.output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("no report ({e}); stderr: {stderr}"));
    assert!(output.status.success(), "{report:#}\nstderr: {stderr}");
    assert!(
        report["records"].as_u64().unwrap() >= events.len() as u64,
        "{report:#}"
    );
    for context in modules.iter().map(|m| m.name) {
        assert!(
            report["by_topic"][config.topic(context)]
                .as_u64()
                .unwrap_or(0)
                > 0,
            "nothing read from {context}: {report:#}"
        );
    }
    // Only product events: no fixture type on any topic.
    let types = report["by_type"].as_object().unwrap();
    assert!(
        types.keys().all(|t| !t.starts_with("trellis.fixture.")),
        "{report:#}"
    );
}

// --- migrations with owners ---------------------------------------------------------------

/// The tables every owner's migrations make (ADR 0011).
const OWNED_TABLES: [&str; 19] = [
    "events",
    "idempotency_keys",
    "relay_checkpoints",
    "relay_parked",
    "dead_letters",
    "consumer_checkpoints",
    "projection_state",
    "auth_sessions",
    "http_idempotency",
    "cohort_webhook_secrets",
    "cohort_webhook_deliveries",
    "cohort_webhook_attempts",
    "cohort_ticket_vectors",
    "event_chain",
    "event_chain_checkpoints",
    "event_chain_cursor",
    "audit_replays",
    "subject_keys",
    "event_chain_reseals",
];

async fn migrated_versions(pool: &sqlx::PgPool) -> Vec<i64> {
    sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
        .fetch_all(pool)
        .await
        .unwrap()
}

async fn missing_tables(pool: &sqlx::PgPool) -> Vec<&'static str> {
    let mut missing = Vec::new();
    for table in OWNED_TABLES {
        let found: Option<String> = sqlx::query_scalar("SELECT to_regclass($1)::text")
            .bind(table)
            .fetch_one(pool)
            .await
            .unwrap();
        if found.is_none() {
            missing.push(table);
        }
    }
    missing
}

/// Each owner migrates its own tables, and a database migrated before migrations had owners
/// (every table from the event store's folder, two files since split) is adopted as it is:
/// nothing re-applied, nothing lost, and a second run changes nothing.
#[tokio::test]
async fn migrations_have_owners_and_a_database_migrated_before_them_is_adopted() {
    let expected: Vec<i64> = (1..=13).collect();

    let fresh = fresh_pg_store(2).await;
    assert_eq!(migrated_versions(fresh.pool()).await, expected);
    assert!(missing_tables(fresh.pool()).await.is_empty());

    let url = trellis_testkit::pg::fresh_database().await;
    let store = trellis_store_postgres::PgEventStore::connect(
        &url,
        trellis_store_postgres::PgStoreOptions::default(),
    )
    .await
    .unwrap();
    let before =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/migrations-before-owners");
    sqlx::migrate::Migrator::new(before)
        .await
        .unwrap()
        .run(store.pool())
        .await
        .unwrap();
    sqlx::query("INSERT INTO consumer_checkpoints (name, global_position) VALUES ('kept', 41)")
        .execute(store.pool())
        .await
        .unwrap();
    let modules = trellis_contexts::modules();
    trellis_api::migrate(&store, &modules).await.unwrap();
    trellis_api::migrate(&store, &modules).await.unwrap();
    assert_eq!(migrated_versions(store.pool()).await, expected);
    assert!(missing_tables(store.pool()).await.is_empty());
    let kept: i64 =
        sqlx::query_scalar("SELECT global_position FROM consumer_checkpoints WHERE name = 'kept'")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(
        kept, 41,
        "the runtime's tables were adopted, not re-created"
    );
}
