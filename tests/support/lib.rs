//! Helpers shared by the black-box tests in this folder.

#![allow(clippy::unwrap_used, clippy::missing_panics_doc, missing_docs)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use trellis_bus_kafka::{KafkaConfig, KafkaSource, Relay, RelayOptions, Routing};
use trellis_demo::{Tally, TallyCommand};
use trellis_kernel::{
    CommandContext, CommandHandler, Metadata, StreamId, SubscriptionOptions, TenantId,
};
use trellis_runtime::{ConsumerOptions, ConsumerStats, EventHandler, EventSource, StoreSource};
use trellis_store_postgres::{PgEventStore, PgStoreOptions};
use trellis_testkit::schemas::SchemaCheckingStore;

/// A migrated event store on a fresh database.
pub async fn fresh_pg_store(connections: u32) -> Arc<PgEventStore> {
    let url = trellis_testkit::pg::fresh_database().await;
    let options = PgStoreOptions {
        max_connections: connections,
        ..PgStoreOptions::default()
    };
    let store = PgEventStore::connect(&url, options).await.unwrap();
    let modules = trellis_contexts::modules();
    trellis_api::migrate(&store, &modules).await.unwrap();
    // As `trellis serve` does: every test's personal fields are encrypted (ADR 0017).
    modules.install_cipher(store.pool().clone(), test_master_key());
    Arc::new(store)
}

/// The master key of test processes.
pub fn test_master_key() -> trellis_privacy::MasterKey {
    trellis_privacy::MasterKey::from_bytes([0x5a; 32])
}

/// Polls `check` every 50 ms until it returns true, or panics after `timeout`.
pub async fn wait_until<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    wait_for(timeout, what, || {
        let checked = check();
        async move { checked.await.then_some(()) }
    })
    .await;
}

/// Polls `find` every 50 ms until it returns a value, or panics after `timeout`.
pub async fn wait_for<T, F, Fut>(timeout: Duration, what: &str, mut find: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(found) = find().await {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reads a Server-Sent Events response until its text contains `needle`; returns the text.
/// Panics after `timeout`, showing what arrived.
pub async fn read_sse_until(
    stream: &mut reqwest::Response,
    needle: &str,
    timeout: Duration,
) -> String {
    let mut received = String::new();
    let deadline = tokio::time::Instant::now() + timeout;
    while !received.contains(needle) {
        let chunk = tokio::time::timeout_at(deadline, stream.chunk())
            .await
            .unwrap_or_else(|_| panic!("no `{needle}` within {timeout:?}: {received}"))
            .unwrap()
            .unwrap_or_else(|| panic!("the stream ended before `{needle}`: {received}"));
        received.push_str(&String::from_utf8_lossy(&chunk));
    }
    received
}

/// A stop switch for spawned loops.
pub struct Stop(watch::Sender<bool>);

impl Stop {
    pub fn new() -> Self {
        Self(watch::channel(false).0)
    }

    pub fn signal(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.0.subscribe();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    }

    pub fn stop(&self) {
        let _ = self.0.send(true);
    }
}

impl Default for Stop {
    fn default() -> Self {
        Self::new()
    }
}

/// Kafka settings for a dev cluster in a test: short sessions so restarts rejoin quickly.
pub fn kafka_config(bootstrap: &str) -> KafkaConfig {
    let mut config = KafkaConfig::new(bootstrap);
    config.session_timeout_ms = 3000;
    config
}

/// Fast retries so dead-lettering tests finish quickly.
pub fn quick_options() -> ConsumerOptions {
    ConsumerOptions {
        max_attempts: 2,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        ..ConsumerOptions::default()
    }
}

/// The topic routing of the tests: the product's context modules plus the demo fixture.
pub fn routing() -> Routing {
    Routing::from_routes(trellis_contexts::with_fixture().routes())
}

/// Spawns the relay; returns its task.
pub fn spawn_relay(
    store: &Arc<PgEventStore>,
    config: &KafkaConfig,
    stop: impl Future<Output = ()> + Send + 'static,
) -> JoinHandle<()> {
    let relay = Relay::new(
        Arc::clone(store),
        store.pool().clone(),
        config.clone(),
        routing(),
        RelayOptions::default(),
    )
    .unwrap();
    tokio::spawn(async move { relay.run(stop).await.unwrap() })
}

/// The two transports every consumer runs on.
#[derive(Debug, Clone)]
pub enum Transport {
    /// Single-node mode: the store's `$all`.
    InProcess,
    /// A Kafka consumer group on the dev cluster at this address.
    Kafka(KafkaConfig),
}

/// Builds the source for `name` on `transport`, reading the demo fixture's topic.
pub async fn source(
    transport: &Transport,
    store: &Arc<PgEventStore>,
    name: &str,
) -> Box<dyn EventSource> {
    source_for(transport, store, name, &["fixture"]).await
}

/// Builds the source for `name` on `transport`, reading `contexts`' topics.
pub async fn source_for(
    transport: &Transport,
    store: &Arc<PgEventStore>,
    name: &str,
    contexts: &[&str],
) -> Box<dyn EventSource> {
    match transport {
        Transport::InProcess => Box::new(
            StoreSource::resume(
                Arc::clone(store),
                store.pool().clone(),
                name,
                SubscriptionOptions {
                    batch_size: 100,
                    poll_interval: Duration::from_millis(5),
                },
            )
            .await
            .unwrap(),
        ),
        Transport::Kafka(config) => {
            let topics: Vec<String> = contexts.iter().map(|c| config.topic(c)).collect();
            Box::new(KafkaSource::new(config, name, &topics).unwrap())
        }
    }
}

/// Spawns a consumer loop for `handler` on `transport`.
pub async fn spawn_consumer(
    transport: &Transport,
    store: &Arc<PgEventStore>,
    handler: Arc<dyn EventHandler>,
    options: ConsumerOptions,
    stop: impl Future<Output = ()> + Send + 'static,
) -> (
    JoinHandle<trellis_runtime::ConsumerOutcome>,
    Arc<ConsumerStats>,
) {
    let source = source(transport, store, handler.name()).await;
    trellis_runtime::spawn_consumer(source, handler, options, stop)
}

/// The store, checking every event appended through it against its schema in `events/`.
pub fn schema_checked(store: &Arc<PgEventStore>) -> Arc<SchemaCheckingStore<PgEventStore>> {
    Arc::new(SchemaCheckingStore::new(Arc::clone(store)))
}

/// Runs tally commands through the command handler (schema-checked).
pub struct Tallies {
    pub handler: CommandHandler<SchemaCheckingStore<PgEventStore>>,
    pub tenant: TenantId,
}

impl Tallies {
    pub fn new(store: &Arc<PgEventStore>) -> Self {
        Self {
            handler: CommandHandler::new(
                schema_checked(store),
                Arc::new(trellis_demo::upcasters()),
            ),
            tenant: TenantId::new(),
        }
    }

    pub async fn run(&self, stream: &StreamId, command: TallyCommand) -> u64 {
        let context = CommandContext {
            metadata: Metadata {
                tenant_id: Some(self.tenant),
                ..Metadata::default()
            },
            ..CommandContext::default()
        };
        self.handler
            .handle::<Tally>(stream.id(), &command, &context)
            .await
            .unwrap()
            .version
    }

    /// Opens a tally and adds `amounts`; returns its stream.
    pub async fn open_with(&self, amounts: &[i64]) -> StreamId {
        let stream = StreamId::new("tally", uuid::Uuid::now_v7()).unwrap();
        self.run(
            &stream,
            TallyCommand::Open {
                name: format!("t-{}", stream.id()),
            },
        )
        .await;
        for amount in amounts {
            self.run(&stream, TallyCommand::Add { amount: *amount })
                .await;
        }
        stream
    }
}

/// `(tally_id, total, additions, status, version)` of every row, sorted.
pub async fn tally_rows(store: &PgEventStore) -> Vec<(uuid::Uuid, i64, i32, String, i64)> {
    sqlx::query_as(
        "SELECT tally_id, total, additions, status, version FROM rm_tally_totals.tallies \
         ORDER BY tally_id",
    )
    .fetch_all(store.pool())
    .await
    .unwrap_or_default()
}

/// The rows the read model must hold, folded straight from the store.
pub async fn expected_tally_rows(store: &PgEventStore) -> Vec<(uuid::Uuid, i64, i32, String, i64)> {
    use std::collections::BTreeMap;
    use trellis_kernel::EventStore;
    let mut rows: BTreeMap<uuid::Uuid, (i64, i32, String, i64)> = BTreeMap::new();
    let mut after = None;
    loop {
        let events = store.read_all(after, 1000).await.unwrap();
        let Some(last) = events.last() else { break };
        after = Some(last.global_position);
        for e in &events {
            if e.stream_id.kind() != "tally" {
                continue;
            }
            let row = rows
                .entry(e.stream_id.id())
                .or_insert((0, 0, "open".into(), 0));
            row.3 = e.stream_version as i64;
            match e.event_type.as_str() {
                "AmountAdded" => {
                    if let Some(amount) = e.payload["amount"].as_i64() {
                        row.0 += amount;
                        row.1 += 1;
                    }
                }
                "TallyClosed" => row.2 = "closed".into(),
                "TallyCertified" => row.2 = "certified".into(),
                _ => {}
            }
        }
    }
    rows.into_iter()
        .map(|(id, (total, additions, status, version))| (id, total, additions, status, version))
        .collect()
}

/// Starts the projection's schema (builds it from the store, which may be empty).
pub async fn ensure_tally_totals(store: &Arc<PgEventStore>) {
    trellis_runtime::projection::ensure(store.pool(), &**store, &trellis_demo_app::TallyTotals)
        .await
        .unwrap();
}

/// The projection as a consumer handler.
pub fn tally_totals_handler(store: &Arc<PgEventStore>) -> Arc<dyn EventHandler> {
    Arc::new(trellis_runtime::projection::ProjectionHandler::new(
        Arc::new(trellis_demo_app::TallyTotals),
        store.pool().clone(),
    ))
}

/// A running API on a fresh database, in single-node mode (projections in-process).
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub store: Arc<PgEventStore>,
    pub transport: Transport,
    stop: Stop,
}

impl TestApp {
    /// Full URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// POSTs JSON, optionally with a bearer token.
    pub async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: serde_json::Value,
    ) -> reqwest::Response {
        let mut request = self.client.post(self.url(path)).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    /// DELETEs with a bearer token.
    pub async fn delete(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .delete(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// PATCHes JSON with a bearer token.
    pub async fn patch(
        &self,
        path: &str,
        token: &str,
        body: serde_json::Value,
    ) -> reqwest::Response {
        self.client
            .patch(self.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// GETs, optionally with a bearer token.
    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    /// Signs up an organization; returns (organization_id, admin_id, admin e-mail).
    pub async fn sign_up(&self, name: &str) -> (String, String, String) {
        let email = format!("admin-{}@example.com", uuid::Uuid::now_v7().simple());
        let response = self
            .post(
                "/v1/organizations",
                None,
                serde_json::json!({
                    "name": name,
                    "admin": {"email": email, "password": PASSWORD, "display_name": "Admin"}
                }),
            )
            .await;
        assert_eq!(response.status(), 201, "{:?}", response.text().await);
        let body: serde_json::Value = response.json().await.unwrap();
        (
            body["organization_id"].as_str().unwrap().to_owned(),
            body["admin_user_id"].as_str().unwrap().to_owned(),
            email,
        )
    }

    /// Logs in; returns the token pair JSON.
    pub async fn login(&self, email: &str, password: &str) -> reqwest::Response {
        self.post(
            "/v1/auth/login",
            None,
            serde_json::json!({"email": email, "password": password}),
        )
        .await
    }

    /// Logs in and returns the access token.
    pub async fn token(&self, email: &str) -> String {
        let response = self.login(email, PASSWORD).await;
        assert_eq!(response.status(), 200);
        let body: serde_json::Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// Creates a user (as `admin_token`); returns its id.
    pub async fn create_user(
        &self,
        admin_token: &str,
        roles: &[&str],
        manager: Option<&str>,
    ) -> (String, String) {
        self.create_named_user(admin_token, "User", roles, manager)
            .await
    }

    /// [`Self::create_user`] with this display name.
    pub async fn create_named_user(
        &self,
        admin_token: &str,
        display_name: &str,
        roles: &[&str],
        manager: Option<&str>,
    ) -> (String, String) {
        let email = format!("user-{}@example.com", uuid::Uuid::now_v7().simple());
        let response = self
            .post(
                "/v1/users",
                Some(admin_token),
                serde_json::json!({
                    "email": email, "password": PASSWORD, "display_name": display_name,
                    "roles": roles, "manager_id": manager,
                }),
            )
            .await;
        assert_eq!(response.status(), 201, "{:?}", response.text().await);
        let body: serde_json::Value = response.json().await.unwrap();
        (body["id"].as_str().unwrap().to_owned(), email)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop.stop();
    }
}

/// A consumer of its own new group that reads `topics` from their beginning and commits
/// nothing (tests that check what the topics hold).
pub fn consumer_from_start(
    config: &KafkaConfig,
    topics: &[&str],
) -> rdkafka::consumer::StreamConsumer {
    use rdkafka::consumer::Consumer;
    let consumer: rdkafka::consumer::StreamConsumer = config
        .client()
        .set("group.id", format!("check-{}", uuid::Uuid::now_v7()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    if !topics.is_empty() {
        consumer.subscribe(topics).unwrap();
    }
    consumer
}

/// A Kafka record's headers as text, by name (CloudEvents `ce_*` and `trellis_*`).
pub fn record_headers(
    record: &impl rdkafka::message::Message,
) -> std::collections::HashMap<String, String> {
    use rdkafka::message::Headers;
    record
        .headers()
        .map(|headers| {
            headers
                .iter()
                .map(|h| {
                    (
                        h.key.to_owned(),
                        String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The password every test user gets (meets the policy).
pub const PASSWORD: &str = "correct horse battery staple";

/// The operator token of test apps (`/metrics`, `/v1/ops/*`).
pub const OPS_TOKEN: &str = "test-operator-token-4f9c2b7e1a6d3085";

/// Starts the API on 127.0.0.1:0 with `config` tweaks, over a fresh, schema-checked store,
/// in single-node mode.
pub async fn spawn_app_with(tweak: impl FnOnce(&mut trellis_api::ApiConfig)) -> TestApp {
    spawn_app_on(Transport::InProcess, tweak).await
}

/// Starts the API with its identity projection fed by `transport` (through the relay and
/// Kafka when it is [`Transport::Kafka`]).
pub async fn spawn_app_on(
    transport: Transport,
    tweak: impl FnOnce(&mut trellis_api::ApiConfig),
) -> TestApp {
    let store = fresh_pg_store(16).await;
    let stop = Stop::new();
    if let Transport::Kafka(config) = &transport {
        spawn_relay(&store, config, stop.signal());
    }
    // The read models the API reads, each fed by the topics of the events it applies: the
    // context modules' projections, as `trellis serve` runs them.
    for (projection, contexts) in trellis_contexts::modules().projections() {
        trellis_runtime::projection::ensure(store.pool(), &*store, &*projection)
            .await
            .unwrap();
        let handler: Arc<dyn EventHandler> = Arc::new(
            trellis_runtime::projection::ProjectionHandler::new(projection, store.pool().clone()),
        );
        let source = source_for(&transport, &store, handler.name(), &contexts).await;
        trellis_runtime::spawn_consumer(source, handler, ConsumerOptions::default(), stop.signal());
    }
    let mut config = trellis_api::ApiConfig {
        ops_token: Some(trellis_api::config::Secret::new(OPS_TOKEN)),
        // A loaded 2-core machine running two test processes can lag a projection past the
        // production default of 5 s; a 2xx that returns before its read model catches up
        // would make the next request of a test flaky.
        max_read_wait: Duration::from_secs(30),
        ..trellis_api::ApiConfig::default()
    };
    tweak(&mut config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let state = trellis_api::AppState::new(
        schema_checked(&store),
        store.pool().clone(),
        config,
        std::sync::Arc::new(trellis_contexts::modules()),
    );
    tokio::spawn(trellis_api::serve(listener, state, stop.signal()));
    TestApp {
        address,
        // A request that never gets an answer fails the test instead of hanging the suite
        // (the edge's own deadline answers 503 long before this).
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap(),
        store,
        transport,
        stop,
    }
}

/// A running reactive service (consumer + its tasks), as one "process" that can be killed.
pub struct ServiceProcess {
    tasks: Vec<tokio::task::AbortHandle>,
    stop: Stop,
}

impl ServiceProcess {
    /// Aborts it at whatever await it is in: no draining, no final checkpoint.
    pub fn kill(self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.stop.stop();
    }
}

impl TestApp {
    /// Starts the recommender on the app's transport with the real model, as `trellis
    /// serve` does: the development module's `recommender` service (ADR 0011), its handler
    /// as a consumer of the topics it declares, its follower as a task.
    pub async fn spawn_recommender(&self) -> ServiceProcess {
        self.spawn_service("recommender").await
    }

    /// Starts the module service `name` on the app's transport, as `trellis serve --roles
    /// <name>` does: its handler as a consumer of the topics it declares, its tasks beside.
    pub async fn spawn_service(&self, name: &str) -> ServiceProcess {
        self.spawn_service_with(name, &[]).await
    }

    /// As [`Self::spawn_service`], with `settings` in front of the environment.
    pub async fn spawn_service_with(
        &self,
        name: &str,
        settings: &[(&str, &str)],
    ) -> ServiceProcess {
        let settings: std::collections::HashMap<String, String> = settings
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let stop = Stop::new();
        let modules = trellis_contexts::modules();
        let service = *modules
            .services()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no module declares the service {name}"));
        let watch = stop.0.clone();
        let deps = trellis_module::ServiceDeps {
            store: schema_checked(&self.store),
            pool: self.store.pool().clone(),
            shutdown: Arc::new(move || {
                let mut rx = watch.subscribe();
                Box::pin(async move {
                    let _ = rx.wait_for(|s| *s).await;
                })
            }),
            settings: Arc::new(move |name: &str| {
                settings
                    .get(name)
                    .cloned()
                    .or_else(|| std::env::var(name).ok())
            }),
        };
        let started = (service.start)(deps)
            .await
            .unwrap_or_else(|e| panic!("the {name} service starts: {e:#}"));
        let mut tasks: Vec<tokio::task::AbortHandle> = started
            .tasks
            .into_iter()
            .map(|task| tokio::spawn(task).abort_handle())
            .collect();
        let handler = started.handler;
        let source = source_for(&self.transport, &self.store, handler.name(), service.reads).await;
        let (consumer, _) = trellis_runtime::spawn_consumer(
            source,
            handler,
            ConsumerOptions::default(),
            stop.signal(),
        );
        tasks.push(consumer.abort_handle());
        ServiceProcess { tasks, stop }
    }
}

/// The API with every consumer on a fresh dev Kafka cluster (3 brokers) and `/readyz`
/// checking it. Keep the cluster alive as long as the app.
pub async fn spawn_kafka_app() -> (trellis_bus_kafka::DevCluster, TestApp) {
    spawn_kafka_app_with(|_| {}).await
}

/// As [`spawn_kafka_app`], with `config` tweaks.
pub async fn spawn_kafka_app_with(
    tweak: impl FnOnce(&mut trellis_api::ApiConfig),
) -> (trellis_bus_kafka::DevCluster, TestApp) {
    let cluster = trellis_bus_kafka::DevCluster::start(3, &kafka_config(""), &routing()).unwrap();
    let config = kafka_config(&cluster.bootstrap_servers());
    let brokers = config.brokers.clone();
    let app = spawn_app_on(Transport::Kafka(config), |c| {
        c.kafka_brokers = Some(brokers);
        tweak(c);
    })
    .await;
    (cluster, app)
}

/// Starts the API with the default configuration.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// The field a 422 problem names first.
pub async fn field_of(response: reqwest::Response) -> String {
    assert_problem(&response, 422);
    json_of(response).await["errors"][0]["field"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The JSON body of a response.
pub async fn json_of(response: reqwest::Response) -> serde_json::Value {
    response.json().await.unwrap()
}

/// Asserts an error answer: its status, and a problem+json body (every error is one).
pub fn assert_problem(response: &reqwest::Response, status: u16) {
    assert_eq!(response.status(), status);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json",
        "errors are problem+json"
    );
}
