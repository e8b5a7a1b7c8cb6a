//! GDPR erasure by crypto-shredding and the right of access (ADR 0017, docs/auditing.md),
//! against PostgreSQL and the dev Kafka cluster: personal fields leave the process only as
//! ciphertext; erasing a user destroys their data key, so neither a dump of the database nor
//! any Kafka topic holds their address or name in plain text, the API shows `"[erased]"`, a
//! rebuild of every projection brings nothing back, and another user's data is intact.

use std::collections::HashSet;
use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use serde_json::{Value, json};
use trellis_tests::*;

struct Person {
    id: String,
    email: String,
    name: String,
}

async fn person(app: &TestApp, admin: &str, admin_id: &str, name: &str, roles: &[&str]) -> Person {
    let (id, email) = app
        .create_named_user(admin, name, roles, Some(admin_id))
        .await;
    Person {
        id,
        email,
        name: name.to_owned(),
    }
}

async fn dump(app: &TestApp) -> String {
    let database: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    let url = trellis_testkit::pg::with_database(&trellis_testkit::pg::server_url(), &database);
    let out = tokio::process::Command::new("pg_dump")
        .arg("--dbname")
        .arg(&url)
        .output()
        .await
        .expect("pg_dump runs (PostgreSQL's client tools)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Every record of every topic of the cluster, from the beginning: keys, values and headers.
async fn every_record(bootstrap: &str) -> String {
    let consumer = consumer_from_start(&kafka_config(bootstrap), &[]);
    let metadata = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .unwrap();
    let topics: Vec<&str> = metadata
        .topics()
        .iter()
        .map(|t| t.name())
        .filter(|t| !t.starts_with("__"))
        .collect();
    assert!(topics.iter().any(|t| t.ends_with("identity")), "{topics:?}");
    consumer.subscribe(&topics).unwrap();
    let mut text = String::new();
    let mut records = 0;
    while let Ok(record) = tokio::time::timeout(Duration::from_secs(8), consumer.recv()).await {
        let record = record.unwrap();
        records += 1;
        text.push_str(&String::from_utf8_lossy(record.key().unwrap_or_default()));
        text.push_str(&String::from_utf8_lossy(
            record.payload().unwrap_or_default(),
        ));
        for (name, value) in record_headers(&record) {
            text.push_str(&name);
            text.push_str(&value);
        }
        text.push('\n');
    }
    assert!(records > 10, "read {records} records of {topics:?}");
    text
}

fn assert_absent(haystack: &str, person: &Person, place: &str) {
    for needle in [&person.email, &person.name] {
        assert!(
            !haystack.contains(needle.as_str()),
            "{place} still holds {needle:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erased_user_leaves_no_plain_trace_in_the_database_or_on_kafka() {
    let (cluster, app) = spawn_kafka_app().await;
    let _matcher = app.spawn_service("matcher").await;
    let (_, admin_id, admin_email) = app.sign_up("Privacy").await;
    let admin = app.token(&admin_email).await;
    let ada = person(
        &app,
        &admin,
        &admin_id,
        "Ada Lovelace-Byron",
        &["employee", "learner", "instructor"],
    )
    .await;
    let grace = person(
        &app,
        &admin,
        &admin_id,
        "Grace Brewster Hopper",
        &["employee"],
    )
    .await;
    let ada_token = app.token(&ada.email).await;

    // Ada has a review, a plan, an upload naming her as its author, a queue ticket whose
    // goals name her, a group and a declared skill; Grace has a review.
    let skill = app
        .post("/v1/skills", Some(&admin), json!({"name": "Proofs"}))
        .await;
    let skill = json_of(skill).await["id"].as_str().unwrap().to_owned();
    for (who, feedback) in [
        (&ada, format!("{} writes clear proofs", ada.name)),
        (&grace, format!("{} debugs well", grace.name)),
    ] {
        let review = app
            .post(
                "/v1/reviews",
                Some(&admin),
                json!({"employee_id": who.id, "period": "2026-H2",
                       "ratings": [{"skill_id": skill, "level": 2}], "feedback": feedback}),
            )
            .await;
        assert_eq!(review.status(), 201, "{:?}", review.text().await);
    }
    let idp = app
        .post(
            "/v1/idps",
            Some(&ada_token),
            json!({"employee_id": ada.id, "title": "Analytical engines",
                   "target_skills": [{"skill_id": skill, "target_level": 4}]}),
        )
        .await;
    assert_eq!(idp.status(), 202, "{:?}", idp.text().await);
    let form = reqwest::multipart::Form::new()
        .text("title", "Notes on the engine")
        .text(
            "metadata",
            json!({"author": ada.name, "subject": "Engines", "language": "en", "tags": []})
                .to_string(),
        )
        .part(
            "file",
            reqwest::multipart::Part::bytes(
                b"# Notes\n\nThe engine weaves algebraic patterns.\n".to_vec(),
            )
            .file_name("notes.md"),
        );
    let uploaded = app
        .client
        .post(app.url("/v1/contents"))
        .bearer_auth(&ada_token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status(), 202, "{:?}", uploaded.text().await);
    let pool = app
        .post(
            "/v1/cohorts/pools",
            Some(&ada_token),
            json!({"name": "Engines", "group_size": {"min": 3, "max": 4},
                   "criteria": [{"attribute": "goals", "mode": "similar", "weight": 1.0}],
                   "batch": {"min_queue": 3, "max_wait_seconds": 60}}),
        )
        .await;
    assert_eq!(pool.status(), 201, "{:?}", pool.text().await);
    let pool = json_of(pool).await["id"].as_str().unwrap().to_owned();
    let joined = app
        .post(
            &format!("/v1/cohorts/pools/{pool}/queue"),
            Some(&ada_token),
            json!({"skills": [{"skill_id": skill, "level": 2}],
                   "goals": format!("{} wants to program the engine", ada.name),
                   "timezone": "Europe/London",
                   "availability": [{"day": "mon", "start": "18:00", "end": "20:00"}],
                   "answers": {"contact": ada.email}}),
        )
        .await;
    assert_eq!(joined.status(), 202, "{:?}", joined.text().await);
    // Two more learners: the matcher forms Ada's group (its curriculum is drawn from the
    // members' goals, one more place her name could be copied to).
    for _ in 0..2 {
        let (_, email) = app.create_user(&admin, &["learner"], None).await;
        let token = app.token(&email).await;
        let joined = app
            .post(
                &format!("/v1/cohorts/pools/{pool}/queue"),
                Some(&token),
                json!({"skills": [{"skill_id": skill, "level": 1}],
                       "goals": "Program the analytical engine", "timezone": "UTC",
                       "availability": [{"day": "mon", "start": "18:00", "end": "20:00"}]}),
            )
            .await;
        assert_eq!(joined.status(), 202, "{:?}", joined.text().await);
    }
    let groups_path = format!("/v1/cohorts/pools/{pool}/groups");
    wait_until(Duration::from_secs(60), "Ada's group", || async {
        let groups = json_of(app.get(&groups_path, Some(&admin)).await).await;
        groups.as_array().is_some_and(|groups| {
            groups
                .iter()
                .any(|g| g["members"].to_string().contains(&ada.id))
        })
    })
    .await;
    let declared = app
        .post(
            "/v1/users/me/skills",
            Some(&ada_token),
            json!({"skill_id": skill, "level": 3}),
        )
        .await;
    assert_eq!(declared.status(), 201, "{:?}", declared.text().await);

    // Before erasure: the store holds only ciphertext for personal fields; the read models
    // hold the plain values (that is what erasure must blank).
    let events: Vec<Value> = sqlx::query_scalar("SELECT payload FROM events")
        .fetch_all(app.store.pool())
        .await
        .unwrap();
    let events = serde_json::to_string(&events).unwrap();
    for who in [&ada, &grace] {
        assert_absent(&events, who, "the events table");
    }
    assert!(events.contains("enc:v1:"));
    wait_until(Duration::from_secs(60), "the read models", || async {
        dump(&app).await.contains(&ada.email)
    })
    .await;

    // A user cannot erase anyone; another organization's admin gets 404.
    let refused = app
        .post(
            &format!("/v1/users/{}/erasure", grace.id),
            Some(&ada_token),
            json!({}),
        )
        .await;
    assert_problem(&refused, 403);
    let (_, _, other_email) = app.sign_up("Elsewhere").await;
    let other_admin = app.token(&other_email).await;
    let foreign = app
        .post(
            &format!("/v1/users/{}/erasure", ada.id),
            Some(&other_admin),
            json!({}),
        )
        .await;
    assert_problem(&foreign, 404);
    let foreign = app
        .get(&format!("/v1/users/{}/export", ada.id), Some(&other_admin))
        .await;
    assert_problem(&foreign, 404);

    // Erase Ada.
    let erased = app
        .post(
            &format!("/v1/users/{}/erasure", ada.id),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(erased.status(), 202, "{:?}", erased.text().await);
    let again = app
        .post(
            &format!("/v1/users/{}/erasure", ada.id),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(again.status(), 202, "erasing again changes nothing");
    assert_problem(&app.login(&ada.email, PASSWORD).await, 401);
    assert_problem(&app.get("/v1/users/me", Some(&ada_token)).await, 401);

    let dumped = wait_for(
        Duration::from_secs(60),
        "every read model to blank Ada",
        || async {
            let dump = dump(&app).await;
            (!dump.contains(&ada.email) && !dump.contains(&ada.name)).then_some(dump)
        },
    )
    .await;
    assert!(
        dumped.contains(&grace.email) && dumped.contains(&grace.name),
        "Grace is intact"
    );
    let records = every_record(&cluster.bootstrap_servers()).await;
    assert!(
        records.contains(&format!("user-{}", ada.id)),
        "Ada's own records were read"
    );
    assert_absent(&records, &ada, "Kafka");
    assert_absent(&records, &grace, "Kafka");
    assert!(
        records.contains("enc:v1:"),
        "personal fields travel as ciphertext"
    );

    // The API and audit reads show "[erased]"; Grace's data is hers.
    let audit = json_of(
        app.get(&format!("/v1/audit/streams/user-{}", ada.id), Some(&admin))
            .await,
    )
    .await;
    assert_eq!(
        audit["events"][0]["payload"]["email"], "[erased]",
        "{audit}"
    );
    assert_eq!(audit["events"][0]["payload"]["display_name"], "[erased]");
    let export = app
        .get(&format!("/v1/users/{}/export", ada.id), Some(&admin))
        .await;
    assert_eq!(export.status(), 200);
    let export = json_of(export).await.to_string();
    assert_absent(&export, &ada, "Ada's export");
    assert!(export.contains("[erased]"));
    let grace_token = app.token(&grace.email).await;
    let own = json_of(app.get("/v1/users/me/export", Some(&grace_token)).await).await;
    assert_eq!(own["subject"], grace.id.as_str());
    let text = own.to_string();
    assert!(
        text.contains(&grace.email) && text.contains("debugs well"),
        "{own}"
    );
    assert!(!text.contains("argon2"), "secrets are redacted");
    let kinds: HashSet<&str> = own["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains("UserRegistered") && kinds.contains("ReviewSubmitted"),
        "{kinds:?}"
    );
    let users = own["read_models"]["rm_identity_users.users"]
        .as_array()
        .unwrap();
    assert_eq!(users[0]["email"], grace.email.as_str());
    assert!(users[0].get("password_hash").is_none());
    assert_eq!(
        own["read_models"]["rm_development_plans.reviews"][0]["feedback"],
        format!("{} debugs well", grace.name)
    );

    // Rebuilding every read model from the log brings nothing back.
    for (projection, _) in trellis_contexts::modules().projections() {
        trellis_runtime::projection::rebuild(app.store.pool(), &*app.store, &*projection, |_| {})
            .await
            .unwrap();
    }
    let rebuilt = dump(&app).await;
    assert_absent(&rebuilt, &ada, "the rebuilt database");
    assert!(rebuilt.contains(&grace.email) && rebuilt.contains(&grace.name));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_erase_themselves_but_not_the_last_admin() {
    let app = spawn_app().await;
    let (_, admin_id, admin_email) = app.sign_up("Self").await;
    let admin = app.token(&admin_email).await;
    let last = app
        .post("/v1/users/me/erasure", Some(&admin), json!({}))
        .await;
    assert_problem(&last, 409);
    let also = app
        .post(
            &format!("/v1/users/{admin_id}/erasure"),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_problem(&also, 409);
    let lin = person(&app, &admin, &admin_id, "Lin Chen", &["learner"]).await;
    let token = app.token(&lin.email).await;
    let mine = json_of(app.get("/v1/users/me/export", Some(&token)).await).await;
    assert_eq!(
        mine["read_models"]["rm_identity_users.users"][0]["display_name"],
        "Lin Chen"
    );
    let erased = app
        .post("/v1/users/me/erasure", Some(&token), json!({}))
        .await;
    assert_eq!(erased.status(), 202, "{:?}", erased.text().await);
    assert_problem(&app.login(&lin.email, PASSWORD).await, 401);
    let export = json_of(
        app.get(&format!("/v1/users/{}/export", lin.id), Some(&admin))
            .await,
    )
    .await;
    assert_eq!(
        export["read_models"]["rm_identity_users.users"][0]["display_name"],
        "[erased]"
    );
    assert_absent(&export.to_string(), &lin, "the export");
    // Their address is free again in the organization.
    let again = app
        .post(
            "/v1/users",
            Some(&admin),
            json!({"email": lin.email, "password": PASSWORD, "display_name": "Lin again",
                   "roles": ["learner"]}),
        )
        .await;
    assert_eq!(again.status(), 201, "{:?}", again.text().await);
}

/// Appends a `UserRegistered` for `user` of `tenant` straight to the store (as the identity
/// context writes it; encrypted by the installed cipher).
async fn register_in_log(
    store: &trellis_store_postgres::PgEventStore,
    tenant: trellis_kernel::TenantId,
    user: uuid::Uuid,
    email: &str,
    display_name: &str,
) {
    use trellis_kernel::{
        AppendOptions, EventStore, ExpectedVersion, Metadata, NewEvent, StreamId,
    };
    let payload = registration(tenant, email, display_name);
    let metadata = Metadata {
        tenant_id: Some(tenant),
        ..Metadata::default()
    };
    let event = NewEvent::new("UserRegistered", 1, payload, metadata).unwrap();
    store
        .append(
            &StreamId::new("user", user).unwrap(),
            ExpectedVersion::NoStream,
            vec![event],
            AppendOptions::default(),
        )
        .await
        .unwrap();
}

/// A `UserRegistered` payload.
fn registration(tenant: trellis_kernel::TenantId, email: &str, display_name: &str) -> Value {
    json!({"organization_id": tenant.to_string(), "email": email, "display_name": display_name,
           "password_hash": "$argon2id$v=19$old", "roles": ["learner"], "manager_id": null})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_from_before_encryption_are_encrypted_once_and_their_chain_relinked_on_record() {
    use trellis_kernel::{EventStore, StreamId, TenantId};
    use trellis_store_postgres::{chain, history};
    let store = fresh_pg_store(4).await;
    let pool = store.pool();
    let modules = trellis_contexts::modules();
    let tenant = TenantId::new();
    let register = |email: &str| registration(tenant, email, "Old Timer");
    let (old, tampered) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    for (user, email) in [(old, "old@example.com"), (tampered, "other@example.com")] {
        register_in_log(&store, tenant, user, email, "Old Timer").await;
    }
    // As written before ADR 0017: plain text in the log, sealed.
    for (user, email) in [(old, "old@example.com"), (tampered, "other@example.com")] {
        sqlx::query("UPDATE events SET payload = $2 WHERE stream_id = $1")
            .bind(format!("user-{user}"))
            .bind(register(email))
            .execute(pool)
            .await
            .unwrap();
    }
    chain::seal_all(pool).await.unwrap();
    let before = chain::verify(pool, tenant.as_uuid()).await.unwrap();
    assert!(before.ok());

    // A chain that does not verify is never re-linked, and nothing is encrypted.
    sqlx::query(
        "UPDATE events SET payload = jsonb_set(payload, '{roles}', '[\"admin\"]') \
         WHERE stream_id = $1",
    )
    .bind(format!("user-{tampered}"))
    .execute(pool)
    .await
    .unwrap();
    let refused = history::encrypt_history(pool, &modules.personal_data())
        .await
        .unwrap_err();
    assert!(
        format!("{refused:?}").contains("does not verify"),
        "{refused:?}"
    );
    let still: String =
        sqlx::query_scalar("SELECT payload->>'email' FROM events WHERE stream_id = $1")
            .bind(format!("user-{old}"))
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(still, "old@example.com");
    sqlx::query("UPDATE events SET payload = $2 WHERE stream_id = $1")
        .bind(format!("user-{tampered}"))
        .bind(register("other@example.com"))
        .execute(pool)
        .await
        .unwrap();

    let report = history::encrypt_history(pool, &modules.personal_data())
        .await
        .unwrap();
    assert_eq!(report.events, 2);
    assert_eq!(report.reseals.len(), 1);
    assert_eq!(
        report.reseals[0].old_head,
        before.head.as_ref().unwrap().link,
        "the old head is on record"
    );
    let stored: Vec<Value> = sqlx::query_scalar("SELECT payload FROM events")
        .fetch_all(pool)
        .await
        .unwrap();
    let text = serde_json::to_string(&stored).unwrap();
    assert!(
        !text.contains("old@example.com") && !text.contains("Old Timer"),
        "{text}"
    );
    let after = chain::verify(pool, tenant.as_uuid()).await.unwrap();
    assert!(after.ok(), "{after:?}");
    assert_eq!(after.head.unwrap().link, report.reseals[0].new_head);
    let recorded: (i64, String) =
        sqlx::query_as("SELECT events_rewritten, encode(old_head, 'hex') FROM event_chain_reseals")
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(recorded, (2, before.head.unwrap().link));
    let read = store
        .read_stream(
            &StreamId::new("user", old).unwrap(),
            1,
            trellis_kernel::Direction::Forwards,
            10,
        )
        .await
        .unwrap();
    let read = trellis_kernel::personal::prepare(read).await.unwrap();
    assert_eq!(read[0].payload["email"], "old@example.com");
    let again = history::encrypt_history(pool, &modules.personal_data())
        .await
        .unwrap();
    assert_eq!(
        again,
        history::HistoryReport::default(),
        "nothing is rewritten twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_master_key_reads_every_subject_and_keeps_every_erasure_without_touching_the_log()
{
    use trellis_kernel::{EventStore, StreamId, TenantId, personal};
    use trellis_store_postgres::{chain, keys::PgKeyring};
    let store = fresh_pg_store(4).await;
    let pool = store.pool();
    let modules = trellis_contexts::modules();
    let tenant = TenantId::new();
    let (kept, erased) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    for (user, email) in [(kept, "kept@example.com"), (erased, "erased@example.com")] {
        register_in_log(&store, tenant, user, email, "Rota Tion").await;
    }
    personal::forget(erased).await.unwrap();
    chain::seal_all(pool).await.unwrap();
    let log = || async {
        sqlx::query_scalar::<_, String>(
            "SELECT string_agg(payload::text, '|' ORDER BY global_position) FROM events",
        )
        .fetch_one(pool)
        .await
        .unwrap()
    };
    let before = log().await;
    let read = |user: uuid::Uuid| {
        let store = std::sync::Arc::clone(&store);
        async move {
            let events = store
                .read_stream(
                    &StreamId::new("user", user).unwrap(),
                    1,
                    trellis_kernel::Direction::Forwards,
                    10,
                )
                .await
                .unwrap();
            personal::prepare(events).await
        }
    };

    let new = trellis_privacy::MasterKey::from_bytes([0x6b; 32]);
    let rotating = new.clone().with_previous(test_master_key());
    let report = trellis_privacy::rotate(&rotating, &PgKeyring::new(pool.clone()))
        .await
        .unwrap();
    assert_eq!(
        (report.rewrapped, report.current, report.unreadable),
        (1, 0, 0)
    );

    // Processes configured with only the new key read the kept subject; the erased one stays
    // erased; the old key alone no longer opens anything.
    modules.install_cipher(pool.clone(), new.clone());
    let events = read(kept).await.unwrap();
    assert_eq!(events[0].payload["email"], "kept@example.com");
    let events = read(erased).await.unwrap();
    assert_eq!(events[0].payload["email"], personal::ERASED);
    modules.install_cipher(pool.clone(), test_master_key());
    assert!(
        read(kept).await.is_err(),
        "the old master key no longer unwraps"
    );

    // The log is untouched: same ciphertext, the chain still verifies; a second run re-wraps
    // nothing.
    assert_eq!(log().await, before);
    assert!(chain::verify(pool, tenant.as_uuid()).await.unwrap().ok());
    let again = trellis_privacy::rotate(&rotating, &PgKeyring::new(pool.clone()))
        .await
        .unwrap();
    assert_eq!((again.rewrapped, again.current), (0, 1));
}
