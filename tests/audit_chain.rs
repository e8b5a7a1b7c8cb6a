//! Tamper evidence (docs/auditing.md, ADR 0016): the sealer seals every event within a
//! second, `GET /v1/audit/verify` and `trellis_store_postgres::chain::verify` find a changed,
//! swapped, inserted or deleted event where it is, and the standalone Python verifier in
//! docs/auditing.md finds the same in an export; correlation chains; replays as of a past
//! position that append and send nothing.

use std::time::Duration;

use serde_json::{Value, json};
use sqlx::PgPool;
use trellis_store_postgres::chain;
use trellis_tests::*;
use uuid::Uuid;

/// The verifier of docs/auditing.md, as an auditor would copy it.
fn verifier() -> String {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/auditing.md"))
        .unwrap();
    let start = doc.find("<!-- verifier:start -->").unwrap();
    let end = doc.find("<!-- verifier:end -->").unwrap();
    let block = &doc[start..end];
    let code = block.split("```python").nth(1).unwrap();
    code.split("```").next().unwrap().to_owned()
}

/// Runs the documented verifier on `export`; (exit success, stdout).
fn python_verify(export: &str) -> (bool, String) {
    let dir = std::env::temp_dir().join(format!("trellis-chain-{}", Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("verify_chain.py");
    let file = dir.join("export.jsonl");
    std::fs::write(&script, verifier()).unwrap();
    std::fs::write(&file, export).unwrap();
    let out = std::process::Command::new("python3")
        .arg(&script)
        .arg(&file)
        .output()
        .expect("python3 runs");
    let _ = std::fs::remove_dir_all(&dir);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

async fn export(app: &TestApp, admin: &str) -> String {
    let response = app.get("/v1/audit/export", Some(admin)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/x-ndjson"
    );
    response.text().await.unwrap()
}

async fn verified(app: &TestApp, admin: &str) -> Value {
    let response = app.get("/v1/audit/verify", Some(admin)).await;
    assert_eq!(response.status(), 200);
    json_of(response).await
}

/// Waits until every committed event is sealed (the running sealer's job).
async fn all_sealed(pool: &PgPool) {
    wait_until(
        std::time::Duration::from_secs(5),
        "every event sealed",
        || async {
            let unsealed: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM events e WHERE NOT EXISTS \
                 (SELECT 1 FROM event_chain c WHERE c.global_position = e.global_position)",
            )
            .fetch_one(pool)
            .await
            .unwrap();
            unsealed == 0
        },
    )
    .await;
}

async fn seq_of(pool: &PgPool, position: i64) -> i64 {
    sqlx::query_scalar("SELECT seq FROM event_chain WHERE global_position = $1")
        .bind(position)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampering_is_found_where_it_happened_by_the_api_and_the_documented_verifier() {
    let app = spawn_app().await;
    let pool = app.store.pool().clone();
    let stop = Stop::new();
    let sealer = tokio::spawn(chain::run_sealer(pool.clone(), stop.signal()));

    let (org, _, admin_email) = app.sign_up("Audited").await;
    let admin = app.token(&admin_email).await;
    let (other_org, _, other_email) = app.sign_up("Bystander").await;
    let other = app.token(&other_email).await;
    for name in ["Rust", "Go", "SQL", "Kafka"] {
        let created = app
            .post("/v1/skills", Some(&admin), json!({"name": name}))
            .await;
        assert_eq!(created.status(), 201);
    }
    let created = app
        .post("/v1/skills", Some(&other), json!({"name": "Cooking"}))
        .await;
    assert_eq!(created.status(), 201);
    // Sealed within a second of the commit (the sealer polls every 200 ms).
    let started = std::time::Instant::now();
    all_sealed(&pool).await;
    assert!(started.elapsed() < std::time::Duration::from_secs(2));

    let report = verified(&app, &admin).await;
    assert_eq!(report["ok"], true, "{report}");
    assert!(report["checked"].as_i64().unwrap() >= 5, "{report}");
    assert_eq!(report["organization_id"], json!(org));
    let intact = export(&app, &admin).await;
    assert_eq!(
        intact.lines().count() as i64,
        report["checked"].as_i64().unwrap()
    );
    let (ok, out) = python_verify(&intact);
    assert!(ok, "{out}");
    assert!(
        out.contains(report["head"]["link"].as_str().unwrap()),
        "{out}"
    );
    // An export holds only the caller's organization, and no secret: the admin's password
    // hash is sealed (and shown) as its digest.
    assert!(!intact.contains("Cooking"));
    assert!(!intact.contains("argon2"), "a password hash in the export");
    assert!(intact.contains("\"password_hash\":\"sha256:"), "{intact}");
    // An export missing its first seal does not verify as a whole chain.
    let (ok, out) = python_verify(&intact.lines().skip(1).collect::<Vec<_>>().join("\n"));
    assert!(ok && out.contains("seals 2-"), "{out}");
    let mut forged: Vec<Value> = intact
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    forged.remove(0);
    forged[0]["seq"] = json!(1);
    let forged: Vec<String> = forged.iter().map(Value::to_string).collect();
    let (ok, out) = python_verify(&forged.join("\n"));
    assert!(!ok && out.contains("seal 1"), "{out}");
    // Admins only.
    let (_, learner_email) = app.create_user(&admin, &["learner"], None).await;
    let learner = app.token(&learner_email).await;
    assert_problem(&app.get("/v1/audit/verify", Some(&learner)).await, 403);
    assert_problem(&app.get("/v1/audit/export", Some(&learner)).await, 403);
    assert_problem(
        &app.get("/v1/audit/export?after=-1", Some(&admin)).await,
        422,
    );
    all_sealed(&pool).await;

    let skills: Vec<i64> = sqlx::query_scalar(
        "SELECT global_position FROM events \
         WHERE tenant_id = $1::text::uuid AND event_type = 'SkillDefined' ORDER BY global_position",
    )
    .bind(&org)
    .fetch_all(&pool)
    .await
    .unwrap();
    let (first, second) = (skills[1], skills[2]);
    let org_id: Uuid = org.parse().unwrap();

    // One payload byte: "Go" becomes "Gp".
    sqlx::query("UPDATE events SET payload = jsonb_set(payload, '{name}', '\"Gp\"') WHERE global_position = $1")
        .bind(first)
        .execute(&pool)
        .await
        .unwrap();
    let report = chain::verify(&pool, org_id).await.unwrap();
    let broken = report
        .broken
        .clone()
        .expect("a changed byte breaks the chain");
    assert_eq!(broken.global_position, Some(first), "{broken:?}");
    assert_eq!(broken.seq, Some(seq_of(&pool, first).await));
    let api = verified(&app, &admin).await;
    assert_eq!(api["ok"], false);
    assert_eq!(api["first_broken_position"], json!(first));
    assert_eq!(api["broken"]["global_position"], json!(first), "{api}");
    let (ok, out) = python_verify(&export(&app, &admin).await);
    assert!(!ok && out.contains(&format!("position {first}")), "{out}");
    // The other organization's chain is untouched.
    assert_eq!(verified(&app, &other).await["ok"], true);
    sqlx::query("UPDATE events SET payload = jsonb_set(payload, '{name}', '\"Go\"') WHERE global_position = $1")
        .bind(first)
        .execute(&pool)
        .await
        .unwrap();
    assert!(chain::verify(&pool, org_id).await.unwrap().ok());

    // Two events swapped: found at the first of them.
    let swap = "UPDATE events e SET payload = o.payload FROM events o \
                WHERE (e.global_position, o.global_position) IN (($1, $2), ($2, $1))";
    sqlx::query(swap)
        .bind(first)
        .bind(second)
        .execute(&pool)
        .await
        .unwrap();
    let broken = chain::verify(&pool, org_id).await.unwrap().broken.unwrap();
    assert_eq!(broken.global_position, Some(first), "{broken:?}");
    let (ok, out) = python_verify(&export(&app, &admin).await);
    assert!(!ok && out.contains(&format!("position {first}")), "{out}");
    sqlx::query(swap)
        .bind(first)
        .bind(second)
        .execute(&pool)
        .await
        .unwrap();
    assert!(chain::verify(&pool, org_id).await.unwrap().ok());

    // An event inserted behind the sealer (an old transaction id): found at its position.
    let inserted: i64 = sqlx::query_scalar(
        "INSERT INTO events (transaction_id, event_id, stream_id, stream_version, event_type, \
             schema_version, payload, metadata, tenant_id) \
         SELECT '3'::xid8, gen_random_uuid(), stream_id, 99, event_type, schema_version, \
             payload, metadata, tenant_id FROM events WHERE global_position = $1 \
         RETURNING global_position",
    )
    .bind(first)
    .fetch_one(&pool)
    .await
    .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let broken = chain::verify(&pool, org_id).await.unwrap().broken.unwrap();
    assert_eq!(
        (broken.seq, broken.global_position),
        (None, Some(inserted)),
        "{broken:?}"
    );
    assert!(broken.reason.contains("inserted"), "{broken:?}");
    sqlx::query("DELETE FROM events WHERE global_position = $1")
        .bind(inserted)
        .execute(&pool)
        .await
        .unwrap();
    assert!(chain::verify(&pool, org_id).await.unwrap().ok());

    // A seal deleted from the middle: "missing".
    let middle = seq_of(&pool, first).await;
    let seal: (i64, Vec<u8>) = sqlx::query_as(
        "DELETE FROM event_chain WHERE global_position = $1 RETURNING global_position, link",
    )
    .bind(first)
    .fetch_one(&pool)
    .await
    .unwrap();
    let broken = chain::verify(&pool, org_id).await.unwrap().broken.unwrap();
    assert_eq!(broken.seq, Some(middle), "{broken:?}");
    assert!(broken.reason.contains("missing"), "{broken:?}");
    sqlx::query(
        "INSERT INTO event_chain (chain_id, seq, global_position, link) VALUES ($1, $2, $3, $4)",
    )
    .bind(org_id)
    .bind(middle)
    .bind(seal.0)
    .bind(&seal.1)
    .execute(&pool)
    .await
    .unwrap();
    assert!(chain::verify(&pool, org_id).await.unwrap().ok());

    // An event deleted: found at its seal, by both.
    sqlx::query("DELETE FROM events WHERE global_position = $1")
        .bind(second)
        .execute(&pool)
        .await
        .unwrap();
    let broken = chain::verify(&pool, org_id).await.unwrap().broken.unwrap();
    assert_eq!(broken.global_position, Some(second), "{broken:?}");
    assert!(broken.reason.contains("deleted"), "{broken:?}");
    let (ok, out) = python_verify(&export(&app, &admin).await);
    assert!(
        !ok && out.contains(&format!("seal {}", seq_of(&pool, second).await)),
        "{out}"
    );
    assert!(chain::verify(&pool, Uuid::nil()).await.unwrap().ok());

    // The other organization's tail cut off (its seals and events from its checkpoint on):
    // the walk finds nothing wrong, the checkpoint does.
    stop.stop();
    sealer.await.unwrap();
    let other_id: Uuid = other_org.parse().unwrap();
    let checkpoint: i64 =
        sqlx::query_scalar("SELECT max(seq) FROM event_chain_checkpoints WHERE chain_id = $1")
            .bind(other_id)
            .fetch_one(&pool)
            .await
            .unwrap();
    sqlx::query(
        "WITH cut AS (DELETE FROM event_chain WHERE chain_id = $1 AND seq >= $2 \
                      RETURNING global_position) \
         DELETE FROM events WHERE global_position IN (SELECT global_position FROM cut)",
    )
    .bind(other_id)
    .bind(checkpoint)
    .execute(&pool)
    .await
    .unwrap();
    let broken = chain::verify(&pool, other_id)
        .await
        .unwrap()
        .broken
        .unwrap();
    assert_eq!(broken.seq, Some(checkpoint), "{broken:?}");
    assert!(broken.reason.contains("checkpoint"), "{broken:?}");
}

/// Verifying while events are appended and sealed reports the chain intact each time (it
/// checks up to the head it read first).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verifying_beside_the_sealer_finds_nothing_wrong() {
    let app = spawn_app().await;
    let pool = app.store.pool().clone();
    let stop = Stop::new();
    let sealer = tokio::spawn(chain::run_sealer(pool.clone(), stop.signal()));
    let (_, _, admin_email) = app.sign_up("Busy").await;
    let admin = app.token(&admin_email).await;
    all_sealed(&pool).await;
    let writer = {
        let (client, url, admin) = (app.client.clone(), app.url("/v1/skills"), admin.clone());
        tokio::spawn(async move {
            for i in 0..60 {
                let created = client
                    .post(&url)
                    .bearer_auth(&admin)
                    .json(&json!({"name": format!("Skill {i}")}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(created.status(), 201);
            }
        })
    };
    let mut checked = Vec::new();
    while !writer.is_finished() {
        let report = verified(&app, &admin).await;
        assert_eq!(report["ok"], true, "{report}");
        checked.push(report["checked"].as_i64().unwrap());
    }
    writer.await.unwrap();
    all_sealed(&pool).await;
    let report = verified(&app, &admin).await;
    assert_eq!(report["ok"], true, "{report}");
    assert!(
        checked.windows(2).any(|w| w[1] > w[0]),
        "the chain grew while it was verified: {checked:?}"
    );
    stop.stop();
    sealer.await.unwrap();
}

/// One request's consequences as a tree: a learner's join, the matcher's `GroupsFormed` it
/// caused and the `GroupOpened` of each group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requests_consequences_form_one_causation_tree() {
    let (cluster, app) = spawn_kafka_app().await;
    let _matcher = app.spawn_service("matcher").await;
    let (org, _, admin_email) = app.sign_up("Correlated").await;
    let admin = app.token(&admin_email).await;
    let skill = app
        .post("/v1/skills", Some(&admin), json!({"name": "Rust"}))
        .await;
    let skill = json_of(skill).await["id"].as_str().unwrap().to_owned();
    let body = json!({"name": "Pairs", "group_size": {"min": 2, "max": 2},
        "criteria": [], "batch": {"min_queue": 4, "max_wait_seconds": 600}});
    let pool = app.post("/v1/cohorts/pools", Some(&admin), body).await;
    let pool = json_of(pool).await["id"].as_str().unwrap().to_owned();
    let queue = format!("/v1/cohorts/pools/{pool}/queue");
    for _ in 0..4 {
        let (_, email) = app.create_user(&admin, &["learner"], None).await;
        let token = app.token(&email).await;
        let join = json!({"skills": [{"skill_id": skill, "level": 2}], "goals": "Rust",
            "timezone": "Europe/Lisbon",
            "availability": [{"day": "mon", "start": "18:00", "end": "20:00"}]});
        assert_eq!(app.post(&queue, Some(&token), join).await.status(), 202);
    }
    let groups_path = format!("/v1/cohorts/pools/{pool}/groups");
    wait_until(std::time::Duration::from_secs(20), "two groups", || async {
        json_of(app.get(&groups_path, Some(&admin)).await)
            .await
            .as_array()
            .is_some_and(|g| g.len() == 2)
    })
    .await;
    let stream = json_of(
        app.get(
            &format!("/v1/audit/streams/cohort_pool-{pool}"),
            Some(&admin),
        )
        .await,
    )
    .await;
    let formed = stream["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event_type"] == "GroupsFormed")
        .unwrap()
        .clone();
    let correlation = formed["metadata"]["correlation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let tree = json_of(
        app.get(
            &format!("/v1/audit/correlations/{correlation}"),
            Some(&admin),
        )
        .await,
    )
    .await;
    let roots = tree["roots"].as_array().unwrap();
    assert_eq!(roots.len(), 1, "{tree}");
    assert_eq!(roots[0]["event_type"], "MatchQueueJoined", "{tree}");
    let caused = roots[0]["caused"].as_array().unwrap();
    assert_eq!(caused.len(), 1, "{tree}");
    assert_eq!(caused[0]["event_type"], "GroupsFormed");
    assert_eq!(caused[0]["event_id"], formed["event_id"]);
    let opened = caused[0]["caused"].as_array().unwrap();
    assert_eq!(opened.len(), 2, "{tree}");
    assert!(opened.iter().all(|e| e["event_type"] == "GroupOpened"));
    assert_eq!(tree["events"], json!(4), "{tree}");
    assert_eq!(tree["truncated"], false);

    // The organization's events up to a position republished to a topic for outside
    // auditors (what `trellis replay --to-topic` does): each with its CloudEvents headers
    // and the replay's id.
    let Transport::Kafka(config) = &app.transport else {
        unreachable!("a Kafka app")
    };
    cluster.create_topic("audit.outside", 1).unwrap();
    let cut: i64 = sqlx::query_scalar(
        "SELECT max(global_position) FROM events WHERE tenant_id = $1::text::uuid",
    )
    .bind(&org)
    .fetch_one(app.store.pool())
    .await
    .unwrap();
    let expected: Vec<Uuid> = sqlx::query_scalar(
        "SELECT event_id FROM events WHERE tenant_id = $1::text::uuid AND global_position <= $2 \
         ORDER BY event_id",
    )
    .bind(&org)
    .bind(cut)
    .fetch_all(app.store.pool())
    .await
    .unwrap();
    let replay_id = Uuid::now_v7();
    let publisher = trellis_bus_kafka::Republisher::new(
        config,
        trellis_bus_kafka::Routing::from_routes(trellis_contexts::modules().routes()),
        "audit.outside",
        replay_id,
    )
    .unwrap();
    let mut batches = trellis_runtime::replay::EventsUntil::new(
        &*app.store,
        org.parse().unwrap(),
        trellis_runtime::replay::Cut::Position(cut),
    );
    while let Some((events, _)) = batches.next_batch().await.unwrap() {
        publisher.send(&events).await.unwrap();
    }
    let consumer = consumer_from_start(config, &["audit.outside"]);
    let mut received = Vec::new();
    while received.len() < expected.len() {
        let record = tokio::time::timeout(Duration::from_secs(20), consumer.recv())
            .await
            .expect("every republished event arrives")
            .unwrap();
        let headers = record_headers(&record);
        assert_eq!(headers["trellis_replay_id"], replay_id.to_string());
        assert_eq!(headers["trellis_tenant_id"], org);
        assert!(headers["ce_type"].starts_with("trellis."), "{headers:?}");
        received.push(headers["ce_id"].parse::<Uuid>().unwrap());
    }
    received.sort();
    assert_eq!(received, expected);

    // Another organization's admin: 404; a learner: 403.
    let (_, _, stranger_email) = app.sign_up("Elsewhere").await;
    let stranger = app.token(&stranger_email).await;
    let path = format!("/v1/audit/correlations/{correlation}");
    assert_problem(&app.get(&path, Some(&stranger)).await, 404);
    let (_, learner_email) = app.create_user(&admin, &["learner"], None).await;
    let learner = app.token(&learner_email).await;
    assert_problem(&app.get(&path, Some(&learner)).await, 403);
}

/// A receiver that counts what it is sent.
async fn counting_receiver() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&hits);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let counter = std::sync::Arc::clone(&counter);
            async move {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, hits)
}

/// The organization's pools in `schema`, as one JSON text.
async fn snapshot_pools(pool: &PgPool, schema: &str, org: &str) -> String {
    let pools: Option<String> = sqlx::query_scalar(&format!(
        "SELECT json_agg(json_build_array(pool_id, closed, queue_size, groups_formed) \
             ORDER BY pool_id)::text \
         FROM {schema}.pools WHERE organization_id = $1::text::uuid"
    ))
    .bind(org)
    .fetch_one(pool)
    .await
    .unwrap();
    pools.unwrap_or_default()
}

/// Side effects anyone could observe: appended events, webhook deliveries recorded, calls
/// a receiver got.
async fn side_effects(pool: &PgPool, hits: &std::sync::atomic::AtomicUsize) -> (i64, i64, usize) {
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(pool)
        .await
        .unwrap();
    let deliveries: i64 = sqlx::query_scalar("SELECT count(*) FROM cohort_webhook_deliveries")
        .fetch_one(pool)
        .await
        .unwrap();
    (
        events,
        deliveries,
        hits.load(std::sync::atomic::Ordering::SeqCst),
    )
}

/// A replay as of a past position rebuilds the read models as they were then (compared with
/// a copy taken then), while the matcher and the webhook dispatcher run: nothing is appended
/// and nothing is sent during it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_rebuilds_the_past_and_appends_and_sends_nothing() {
    let (_cluster, app) = spawn_kafka_app_with(|config| config.webhooks_allow_private = true).await;
    let _matcher = app.spawn_service("matcher").await;
    let _webhooks = app
        .spawn_service_with("webhooks", &[("TRELLIS_WEBHOOKS_ALLOW_PRIVATE", "1")])
        .await;
    let pool = app.store.pool().clone();
    let (url, hits) = counting_receiver().await;
    let (org, _, admin_email) = app.sign_up("Replayed").await;
    let admin = app.token(&admin_email).await;
    let skill = app
        .post("/v1/skills", Some(&admin), json!({"name": "Rust"}))
        .await;
    let skill = json_of(skill).await["id"].as_str().unwrap().to_owned();
    let body = json!({"name": "Pairs", "group_size": {"min": 2, "max": 2},
        "criteria": [], "batch": {"min_queue": 2, "max_wait_seconds": 600}});
    let cohort = app.post("/v1/cohorts/pools", Some(&admin), body).await;
    let cohort = json_of(cohort).await["id"].as_str().unwrap().to_owned();
    let hooks = format!("/v1/cohorts/pools/{cohort}/webhooks");
    assert_eq!(
        app.post(&hooks, Some(&admin), json!({"url": url}))
            .await
            .status(),
        201
    );
    for _ in 0..2 {
        let (_, email) = app.create_user(&admin, &["learner"], None).await;
        let token = app.token(&email).await;
        let join = json!({"skills": [{"skill_id": skill, "level": 2}], "goals": "Rust",
            "timezone": "Europe/Lisbon",
            "availability": [{"day": "mon", "start": "18:00", "end": "20:00"}]});
        assert_eq!(
            app.post(
                &format!("/v1/cohorts/pools/{cohort}/queue"),
                Some(&token),
                join
            )
            .await
            .status(),
            202
        );
    }
    wait_until(
        Duration::from_secs(30),
        "the group's webhook called",
        || async { hits.load(std::sync::atomic::Ordering::SeqCst) > 0 },
    )
    .await;
    // Quiet, then the copy "taken at that time" and the cut.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cut: i64 = sqlx::query_scalar(
        "SELECT max(global_position) FROM events WHERE tenant_id = $1::text::uuid",
    )
    .bind(&org)
    .fetch_one(&pool)
    .await
    .unwrap();
    let then = snapshot_skills(&pool, "rm_development_catalog", &org).await;
    let cut_time: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT recorded_at FROM events WHERE global_position = $1")
            .bind(cut)
            .fetch_one(&pool)
            .await
            .unwrap();
    let then_pools = snapshot_pools(&pool, "rm_cohort_pools", &org).await;
    assert!(
        then.contains("Rust") && then_pools.contains("false"),
        "{then} {then_pools}"
    );

    // History moves on: a new skill, the pool closed.
    assert_eq!(
        app.post("/v1/skills", Some(&admin), json!({"name": "SQL"}))
            .await
            .status(),
        201
    );
    let closed = app
        .post(
            &format!("/v1/cohorts/pools/{cohort}/close"),
            Some(&admin),
            json!({}),
        )
        .await;
    assert!(closed.status().is_success(), "{}", closed.status());
    wait_until(
        Duration::from_secs(10),
        "the pool closed in the read model",
        || async {
            snapshot_pools(&pool, "rm_cohort_pools", &org)
                .await
                .contains("true")
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_ne!(
        snapshot_skills(&pool, "rm_development_catalog", &org).await,
        then
    );

    let before = side_effects(&pool, &hits).await;
    let started = app
        .post(
            "/v1/audit/replays",
            Some(&admin),
            json!({"until": cut.to_string(), "projections": ["development_catalog", "cohort_pools"]}),
        )
        .await;
    assert_eq!(started.status(), 202);
    let started = json_of(started).await;
    let id = started["id"].as_str().unwrap().to_owned();
    let schema = started["schema"].as_str().unwrap().to_owned();
    let status = wait_for(Duration::from_secs(30), "the replay completed", || async {
        let status = json_of(
            app.get(&format!("/v1/audit/replays/{id}"), Some(&admin))
                .await,
        )
        .await;
        (status["status"] != "running").then_some(status)
    })
    .await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(status["progress"]["share"], 1.0, "{status}");
    // It read every event of the organization up to the cut, to the end of the log.
    let up_to_cut: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE tenant_id = $1::text::uuid AND global_position <= $2",
    )
    .bind(&org)
    .bind(cut)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        status["progress"]["events_read"],
        json!(up_to_cut),
        "{status}"
    );
    assert_eq!(
        status["progress"]["position"], status["progress"]["end_position"],
        "{status}"
    );
    assert!(
        status["progress"]["events_applied"].as_i64().unwrap() > 0,
        "{status}"
    );
    assert_eq!(
        snapshot_skills(&pool, &schema, &org).await,
        then,
        "the catalog as it was at position {cut}"
    );
    assert_eq!(
        snapshot_pools(&pool, &schema, &org).await,
        then_pools,
        "the pool as it was (open)"
    );
    // Nothing appended, nothing recorded for delivery, nothing sent.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(side_effects(&pool, &hits).await, before);

    // The same cut by time, from the command line's function.
    let catalog = trellis_contexts::modules()
        .projections()
        .into_iter()
        .find(|(p, _)| p.name() == "development_catalog")
        .unwrap()
        .0;
    trellis_runtime::replay::replay(
        &pool,
        &*app.store,
        &[&*catalog],
        org.parse().unwrap(),
        trellis_runtime::replay::Cut::Time(cut_time),
        "audit_by_time",
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(snapshot_skills(&pool, "audit_by_time", &org).await, then);
    // A replay never writes into an existing schema, nor drops it.
    let into_existing = trellis_runtime::replay::replay(
        &pool,
        &*app.store,
        &[&*catalog],
        org.parse().unwrap(),
        trellis_runtime::replay::Cut::Position(cut),
        "audit_by_time",
        |_| {},
    )
    .await;
    assert!(into_existing.unwrap_err().to_string().contains("exists"));
    assert_eq!(snapshot_skills(&pool, "audit_by_time", &org).await, then);
    // A replay that fails after creating its schema drops it, and only what it created: a
    // schema in the way of its guard stays.
    sqlx::raw_sql(
        "CREATE SCHEMA audit_fail__guard_development_catalog; \
         CREATE TABLE audit_fail__guard_development_catalog.kept (x int)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let failed = trellis_runtime::replay::replay(
        &pool,
        &*app.store,
        &[&*catalog],
        org.parse().unwrap(),
        trellis_runtime::replay::Cut::Position(cut),
        "audit_fail",
        |_| {},
    )
    .await;
    assert!(failed.is_err());
    let schemas: Vec<String> = sqlx::query_scalar(
        "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'audit_fail%' ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        schemas,
        vec!["audit_fail__guard_development_catalog".to_owned()]
    );

    // Bad input names the field; another organization's admin sees no such replay.
    let bad = app
        .post(
            "/v1/audit/replays",
            Some(&admin),
            json!({"until": "soon", "projections": ["development_catalog"]}),
        )
        .await;
    assert_eq!(field_of(bad).await, "until");
    let bad = app
        .post(
            "/v1/audit/replays",
            Some(&admin),
            json!({"until": "1", "projections": ["nope"]}),
        )
        .await;
    assert_eq!(field_of(bad).await, "projections[0]");
    // Admins only.
    let (_, learner_email) = app.create_user(&admin, &["learner"], None).await;
    let learner = app.token(&learner_email).await;
    let body = json!({"until": "1", "projections": ["development_catalog"]});
    assert_problem(
        &app.post("/v1/audit/replays", Some(&learner), body.clone())
            .await,
        403,
    );
    assert_problem(
        &app.get(&format!("/v1/audit/replays/{id}"), Some(&learner))
            .await,
        403,
    );
    // Two running replays per organization at most.
    sqlx::query(
        "INSERT INTO audit_replays (replay_id, organization_id, requested_by, until, \
             projections, schema_name) \
         SELECT gen_random_uuid(), $1::text::uuid, gen_random_uuid(), '1', '{}', 'x' \
         FROM generate_series(1, 2)",
    )
    .bind(&org)
    .execute(&pool)
    .await
    .unwrap();
    assert_problem(
        &app.post("/v1/audit/replays", Some(&admin), body).await,
        409,
    );
    let (_, _, stranger_email) = app.sign_up("Elsewhere").await;
    let stranger = app.token(&stranger_email).await;
    assert_problem(
        &app.get(&format!("/v1/audit/replays/{id}"), Some(&stranger))
            .await,
        404,
    );
}

async fn snapshot_skills(pool: &PgPool, schema: &str, org: &str) -> String {
    let skills: Option<String> = sqlx::query_scalar(&format!(
        "SELECT json_agg(json_build_array(skill_id, name) ORDER BY skill_id)::text \
         FROM {schema}.skills WHERE organization_id = $1::text::uuid"
    ))
    .bind(org)
    .fetch_one(pool)
    .await
    .unwrap();
    skills.unwrap_or_default()
}

/// Seals follow commit order (`transaction_id`, then position), as every `$all` reader does:
/// transaction 9 before transaction 10 although "10" sorts first as text.
#[tokio::test]
async fn sealing_follows_commit_order() {
    let store = fresh_pg_store(2).await;
    let pool = store.pool();
    for (xid, version) in [(10, 1), (9, 2)] {
        sqlx::query(
            "INSERT INTO events (transaction_id, event_id, stream_id, stream_version, \
                 event_type, schema_version, payload, metadata, tenant_id) \
             VALUES ($1::text::xid8, gen_random_uuid(), \
                 'tally-00000000-0000-0000-0000-000000000001', $2, 'TallyOpened', 1, '{}', '{}', \
                 '00000000-0000-0000-0000-0000000000aa')",
        )
        .bind(xid.to_string())
        .bind(version)
        .execute(pool)
        .await
        .unwrap();
    }
    assert_eq!(chain::seal_all(pool).await.unwrap(), 2);
    let order: Vec<String> = sqlx::query_scalar(
        "SELECT e.transaction_id::text FROM event_chain c \
         JOIN events e USING (global_position) ORDER BY c.seq",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(order, vec!["9".to_owned(), "10".to_owned()]);
}
