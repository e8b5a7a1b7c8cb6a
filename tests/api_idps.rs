//! Development plans end to end over HTTP: skills, resources, reviews, IDPs and the
//! recommender (real MiniLM model, real PostgreSQL, the dev Kafka broker where noted).

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Value, json};
use trellis_kernel::{Direction, EventStore, StreamId};
use trellis_tests::*;

/// An organization with an admin, a manager and two of the manager's reports.
struct Org {
    admin: String,
    manager: String,
    manager_id: String,
    employee: String,
    employee_id: String,
    peer: String,
    peer_id: String,
}

async fn org(app: &TestApp, name: &str) -> Org {
    let (_, _, admin_email) = app.sign_up(name).await;
    let admin = app.token(&admin_email).await;
    let (manager_id, manager_email) = app.create_user(&admin, &["manager"], None).await;
    let (employee_id, employee_email) = app
        .create_user(&admin, &["employee"], Some(&manager_id))
        .await;
    let (peer_id, peer_email) = app
        .create_user(&admin, &["employee"], Some(&manager_id))
        .await;
    Org {
        manager: app.token(&manager_email).await,
        employee: app.token(&employee_email).await,
        peer: app.token(&peer_email).await,
        admin,
        manager_id,
        employee_id,
        peer_id,
    }
}

async fn skill(app: &TestApp, token: &str, name: &str, description: &str) -> String {
    let r = app
        .post(
            "/v1/skills",
            Some(token),
            json!({"name": name, "description": description}),
        )
        .await;
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    json_of(r).await["id"].as_str().unwrap().to_owned()
}

async fn resource(
    app: &TestApp,
    token: &str,
    title: &str,
    skills: &[(&str, u8)],
    difficulty: u8,
) -> String {
    let skills: Vec<Value> = skills
        .iter()
        .map(|(id, level)| json!({"skill_id": id, "level": level}))
        .collect();
    let r = app
        .post(
            "/v1/resources",
            Some(token),
            json!({"title": title, "description": title, "kind": "course",
                   "duration_minutes": 90, "difficulty": difficulty, "skills": skills}),
        )
        .await;
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    json_of(r).await["id"].as_str().unwrap().to_owned()
}

async fn create_idp(app: &TestApp, token: &str, body: Value) -> reqwest::Response {
    app.post("/v1/idps", Some(token), body).await
}

async fn read_idp(app: &TestApp, token: &str, id: &str, min_version: u64) -> Value {
    let r = app
        .get(
            &format!("/v1/idps/{id}?min_version={min_version}"),
            Some(token),
        )
        .await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    json_of(r).await
}

/// Skills, resources covering them and one decoy, and a review of the employee.
struct Catalog {
    sql: String,
    postgres: String,
    stats: String,
    leadership: String,
    decoy: String,
}

async fn catalog(app: &TestApp, o: &Org) -> Catalog {
    let sql = skill(
        app,
        &o.admin,
        "SQL",
        "Querying relational databases with SQL",
    )
    .await;
    let postgres = skill(
        app,
        &o.admin,
        "PostgreSQL",
        "Administering and tuning PostgreSQL",
    )
    .await;
    let stats = skill(
        app,
        &o.admin,
        "Statistics",
        "Descriptive and inferential statistics",
    )
    .await;
    let leadership = skill(app, &o.admin, "Leadership", "Leading and motivating a team").await;
    resource(app, &o.admin, "SQL for analysts", &[(&sql, 3)], 2).await;
    resource(
        app,
        &o.manager,
        "PostgreSQL performance tuning",
        &[(&postgres, 4)],
        3,
    )
    .await;
    resource(app, &o.admin, "Statistics with Python", &[(&stats, 4)], 3).await;
    let decoy = resource(
        app,
        &o.admin,
        "Leading your first team",
        &[(&leadership, 3)],
        2,
    )
    .await;
    let review = app
        .post(
            "/v1/reviews",
            Some(&o.manager),
            json!({"employee_id": o.employee_id, "period": "2026-H2",
                   "ratings": [{"skill_id": sql, "level": 1}, {"skill_id": stats, "level": 2}],
                   "feedback": "Good start"}),
        )
        .await;
    assert_eq!(review.status(), 201, "{:?}", review.text().await);
    Catalog {
        sql,
        postgres,
        stats,
        leadership,
        decoy,
    }
}

fn targets(c: &Catalog) -> Value {
    json!([
        {"skill_id": c.sql, "target_level": 3},
        {"skill_id": c.stats, "target_level": 4},
        {"skill_id": c.postgres, "target_level": 3},
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idp_gets_recommendations_through_kafka_that_cover_its_gaps() {
    let (_cluster, app) = spawn_kafka_app().await;
    let _recommender = app.spawn_recommender().await;
    let o = org(&app, "Kafka plans").await;
    let c = catalog(&app, &o).await;

    let r = create_idp(
        &app,
        &o.employee,
        json!({"employee_id": o.employee_id, "title": "Become a data analyst",
               "target_skills": targets(&c), "due_date": "2027-06-30"}),
    )
    .await;
    assert_eq!(r.status(), 202, "{:?}", r.text().await);
    let created = json_of(r).await;
    assert_eq!(created["status"], "processing");
    assert_eq!(created["version"], 1);
    let id = created["id"].as_str().unwrap();

    let idp = read_idp(&app, &o.employee, id, 2).await;
    assert_eq!(idp["status"], "active", "{idp}");
    // Gaps: current levels come from the latest review (SQL 1, Statistics 2; PostgreSQL none).
    let gaps: Vec<(String, u64, u64)> = idp["gaps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["skill_id"].as_str().unwrap().to_owned(),
                g["current"].as_u64().unwrap(),
                g["target"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(gaps.contains(&(c.sql.clone(), 1, 3)), "{gaps:?}");
    assert!(gaps.contains(&(c.stats.clone(), 2, 4)), "{gaps:?}");
    assert!(gaps.contains(&(c.postgres.clone(), 0, 3)), "{gaps:?}");
    let recommendations = idp["recommendations"].as_array().unwrap();
    let covered: HashSet<&str> = recommendations
        .iter()
        .flat_map(|r| r["skill_ids"].as_array().unwrap())
        .map(|s| s.as_str().unwrap())
        .collect();
    for gap in [&c.sql, &c.stats, &c.postgres] {
        assert!(covered.contains(gap.as_str()), "gap {gap} uncovered: {idp}");
    }
    // The first three picks cover the three gaps, not one gap three times.
    let first3: HashSet<&str> = recommendations[..3]
        .iter()
        .flat_map(|r| r["skill_ids"].as_array().unwrap())
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(first3.len(), 3, "{idp}");
    for r in recommendations {
        assert!(r["score"].as_f64().unwrap() > 0.0);
        assert!(r["reason"].as_str().unwrap().starts_with("Covers "), "{r}");
        assert!(r["title"].is_string());
        assert_ne!(
            r["resource_id"],
            c.decoy.as_str(),
            "leadership covers no gap: {idp}"
        );
    }
    let _ = &c.leadership;

    // The audit trail: IdpCreated, then the recommender's answer, one correlation id.
    let audit = json_of(
        app.get(&format!("/v1/audit/streams/idp-{id}"), Some(&o.admin))
            .await,
    )
    .await;
    let events = audit["events"].as_array().unwrap();
    let types: Vec<&str> = events
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["IdpCreated", "IdpRecommendationsGenerated"]);
    assert_eq!(
        events[0]["metadata"]["correlation_id"],
        events[1]["metadata"]["correlation_id"]
    );
    assert_eq!(events[1]["metadata"]["causation_id"], events[0]["event_id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_progress_and_approval() {
    let app = spawn_app().await;
    let _recommender = app.spawn_recommender().await;
    let o = org(&app, "Items").await;
    let c = catalog(&app, &o).await;
    let created = json_of(
        create_idp(
            &app,
            &o.manager,
            json!({"employee_id": o.employee_id, "title": "Plan by my manager",
                   "target_skills": [{"skill_id": c.sql, "target_level": 4}]}),
        )
        .await,
    )
    .await;
    let id = created["id"].as_str().unwrap();
    let idp = read_idp(&app, &o.employee, id, 2).await;
    let first = idp["recommendations"][0]["resource_id"].as_str().unwrap();

    let path = format!("/v1/idps/{id}/items");
    let added = app
        .post(&path, Some(&o.employee), json!({"resource_id": first}))
        .await;
    assert_eq!(added.status(), 200, "{:?}", added.text().await);
    let item = json_of(added).await["id"].as_str().unwrap().to_owned();
    let again = app
        .post(&path, Some(&o.employee), json!({"resource_id": first}))
        .await;
    assert_eq!(again.status(), 422);
    assert_eq!(json_of(again).await["errors"][0]["field"], "resource_id");
    let free = app
        .post(
            &path,
            Some(&o.manager),
            json!({"title": "Pair with a DBA weekly"}),
        )
        .await;
    assert_eq!(free.status(), 200);

    let done = app
        .post(
            &format!("/v1/idps/{id}/items/{item}/complete"),
            Some(&o.employee),
            json!({}),
        )
        .await;
    assert_eq!(done.status(), 200);
    let version = json_of(done).await["version"].as_u64().unwrap();
    // Completing it again changes nothing (no event, same version).
    let again = app
        .post(
            &format!("/v1/idps/{id}/items/{item}/complete"),
            Some(&o.manager),
            json!({}),
        )
        .await;
    assert_eq!(again.status(), 200);
    assert_eq!(json_of(again).await["version"].as_u64().unwrap(), version);
    let idp = read_idp(&app, &o.employee, id, version).await;
    assert_eq!(
        idp["progress"],
        json!({"completed": 1, "total": 2, "ratio": 0.5})
    );
    assert_eq!(idp["items"][0]["completed"], true);
    // Peers may not touch the plan; another organization does not see it.
    let other = org(&app, "Other items").await;
    let peer_add = app
        .post(
            &format!("/v1/idps/{id}/items"),
            Some(&o.peer),
            json!({"title": "x"}),
        )
        .await;
    assert_eq!(peer_add.status(), 403);
    for path in [
        format!("/v1/idps/{id}/items"),
        format!("/v1/idps/{id}/items/{item}/complete"),
        format!("/v1/idps/{id}/approve"),
        format!("/v1/idps/{id}/retry"),
    ] {
        let r = app
            .post(&path, Some(&other.manager), json!({"title": "x"}))
            .await;
        assert_eq!(r.status(), 404, "{path}");
    }
    let listing = format!("/v1/idps?employee_id={}", o.employee_id);
    assert_eq!(app.get(&listing, Some(&other.admin)).await.status(), 404);

    // Only the manager approves.
    let path = format!("/v1/idps/{id}/approve");
    assert_eq!(
        app.post(&path, Some(&o.employee), json!({})).await.status(),
        403
    );
    assert_eq!(
        app.post(&path, Some(&o.admin), json!({})).await.status(),
        403
    );
    let approved = app.post(&path, Some(&o.manager), json!({})).await;
    assert_eq!(approved.status(), 200);
    let version = json_of(approved).await["version"].as_u64().unwrap();
    let idp = read_idp(&app, &o.admin, id, version).await;
    assert_eq!(idp["approved"]["by"], o.manager_id.as_str());

    let list = json_of(app.get("/v1/idps", Some(&o.employee)).await).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let reports = json_of(
        app.get(
            &format!("/v1/idps?employee_id={}", o.employee_id),
            Some(&o.manager),
        )
        .await,
    )
    .await;
    assert_eq!(reports[0]["id"], id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_may_read_and_write_whose_plan() {
    let app = spawn_app().await;
    let o = org(&app, "Authz").await;
    let other = org(&app, "Elsewhere").await;
    let sql = skill(&app, &o.admin, "SQL", "").await;
    let body = |employee: &str| {
        json!({"employee_id": employee, "title": "Plan",
               "target_skills": [{"skill_id": sql, "target_level": 3}]})
    };
    // Nobody creates a plan for a colleague they do not manage.
    assert_eq!(
        create_idp(&app, &o.peer, body(&o.employee_id))
            .await
            .status(),
        403
    );
    assert_eq!(
        create_idp(&app, &o.admin, body(&o.employee_id))
            .await
            .status(),
        403
    );
    let r = create_idp(&app, &o.employee, body(&o.employee_id)).await;
    assert_eq!(r.status(), 202);
    let id = json_of(r).await["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/idps/{id}");

    assert_eq!(app.get(&path, Some(&o.employee)).await.status(), 200);
    assert_eq!(app.get(&path, Some(&o.manager)).await.status(), 200);
    assert_eq!(app.get(&path, Some(&o.admin)).await.status(), 200);
    // A peer of the same organization: forbidden. Another organization: not found.
    assert_eq!(app.get(&path, Some(&o.peer)).await.status(), 403);
    assert_eq!(app.get(&path, Some(&other.manager)).await.status(), 404);
    assert_eq!(app.get(&path, Some(&other.admin)).await.status(), 404);
    // A manager of other people is not this employee's manager.
    let (_, other_manager_email) = app.create_user(&o.admin, &["manager"], None).await;
    let other_manager = app.token(&other_manager_email).await;
    assert_eq!(app.get(&path, Some(&other_manager)).await.status(), 403);
    let listing = format!("/v1/idps?employee_id={}", o.employee_id);
    assert_eq!(app.get(&listing, Some(&o.peer)).await.status(), 403);
    assert_eq!(app.get(&listing, Some(&other_manager)).await.status(), 403);
    assert_eq!(app.get("/v1/idps", None).await.status(), 401);

    // Reviews: only the employee's manager.
    let review = json!({"employee_id": o.employee_id, "period": "Q1",
                        "ratings": [{"skill_id": sql, "level": 2}]});
    assert_eq!(
        app.post("/v1/reviews", Some(&other_manager), review.clone())
            .await
            .status(),
        403
    );
    assert_eq!(
        app.post("/v1/reviews", Some(&o.peer), review.clone())
            .await
            .status(),
        403
    );
    assert_eq!(
        app.post("/v1/reviews", Some(&o.manager), review)
            .await
            .status(),
        201
    );
    let _ = (&o.peer_id, &o.manager_id);
}

async fn assert_field(response: reqwest::Response, status: u16, field: &str) {
    assert_eq!(response.status(), status);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body = json_of(response).await;
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert!(fields.contains(&field), "{field} not in {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_problem_naming_the_field() {
    let app = spawn_app().await;
    let o = org(&app, "Bad input").await;
    let sql = skill(&app, &o.admin, "SQL", "").await;
    let unknown = uuid::Uuid::now_v7();
    let idp = |targets: Value| json!({"employee_id": o.employee_id, "title": "Plan", "target_skills": targets});
    let cases = [
        (
            idp(json!([{"skill_id": unknown, "target_level": 3}])),
            "target_skills[0].skill_id",
        ),
        (
            idp(json!([{"skill_id": sql, "target_level": 6}])),
            "target_skills[0].target_level",
        ),
        (
            idp(json!([{"skill_id": sql, "target_level": 0}])),
            "target_skills[0].target_level",
        ),
        (idp(json!([])), "target_skills"),
        (
            idp(
                json!([{"skill_id": sql, "target_level": 3}, {"skill_id": sql, "target_level": 4}]),
            ),
            "target_skills",
        ),
        (
            json!({"employee_id": o.employee_id, "title": "", "target_skills": [{"skill_id": sql, "target_level": 3}]}),
            "title",
        ),
        (
            json!({"employee_id": unknown, "title": "x", "target_skills": [{"skill_id": sql, "target_level": 3}]}),
            "employee_id",
        ),
        (
            json!({"employee_id": o.employee_id, "title": "x", "target_role": "astronaut"}),
            "target_role",
        ),
        (
            json!({"employee_id": o.employee_id, "title": "x", "due_date": "-5000-01-01",
                   "target_skills": [{"skill_id": sql, "target_level": 3}]}),
            "due_date",
        ),
    ];
    for (body, field) in cases {
        assert_field(create_idp(&app, &o.employee, body).await, 422, field).await;
    }
    let review =
        |ratings: Value| json!({"employee_id": o.employee_id, "period": "Q1", "ratings": ratings});
    for (body, field) in [
        (
            review(json!([{"skill_id": sql, "level": 9}])),
            "ratings[0].level",
        ),
        (
            review(json!([{"skill_id": unknown, "level": 2}])),
            "ratings[0].skill_id",
        ),
        (review(json!([])), "ratings"),
    ] {
        assert_field(
            app.post("/v1/reviews", Some(&o.manager), body).await,
            422,
            field,
        )
        .await;
    }
    let r = resource(&app, &o.admin, "SQL 101", &[(&sql, 2)], 1).await;
    let rate = |v: u8| json!({"rating": v});
    let path = format!("/v1/resources/{r}/ratings");
    assert_field(
        app.post(&path, Some(&o.employee), rate(0)).await,
        422,
        "rating",
    )
    .await;
    assert_eq!(
        app.post(&path, Some(&o.employee), rate(5)).await.status(),
        201
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_nothing_covers_fails_and_can_be_retried() {
    let app = spawn_app().await;
    let _recommender = app.spawn_recommender().await;
    let o = org(&app, "Retry").await;
    let rust = skill(&app, &o.admin, "Rust", "Systems programming in Rust").await;
    let created = json_of(
        create_idp(
            &app,
            &o.employee,
            json!({"employee_id": o.employee_id, "title": "Learn Rust",
                   "target_skills": [{"skill_id": rust, "target_level": 3}]}),
        )
        .await,
    )
    .await;
    let id = created["id"].as_str().unwrap();
    let idp = read_idp(&app, &o.employee, id, 2).await;
    assert_eq!(idp["status"], "failed", "{idp}");
    assert!(
        idp["failure_reason"].as_str().unwrap().contains("Rust"),
        "{idp}"
    );
    // Items need an active plan.
    let item = app
        .post(
            &format!("/v1/idps/{id}/items"),
            Some(&o.employee),
            json!({"title": "x"}),
        )
        .await;
    assert_eq!(item.status(), 409);

    resource(&app, &o.admin, "The Rust book", &[(&rust, 3)], 2).await;
    let retried = app
        .post(
            &format!("/v1/idps/{id}/retry"),
            Some(&o.employee),
            json!({}),
        )
        .await;
    assert_eq!(retried.status(), 202);
    assert_eq!(json_of(retried).await["version"], 3);
    let idp = read_idp(&app, &o.employee, id, 4).await;
    assert_eq!(idp["status"], "active", "{idp}");
    assert_eq!(idp["recommendations"][0]["title"], "The Rust book");
    // Retrying an active plan is a conflict.
    let again = app
        .post(
            &format!("/v1/idps/{id}/retry"),
            Some(&o.employee),
            json!({}),
        )
        .await;
    assert_eq!(again.status(), 409);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_role_brings_its_esco_skills() {
    let app = spawn_app().await;
    let o = org(&app, "Roles").await;
    let occupations = json_of(
        app.get("/v1/occupations?q=data%20analyst", Some(&o.employee))
            .await,
    )
    .await;
    let occupation = &occupations[0];
    let uris: HashSet<&str> = occupation["skills"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["uri"].as_str().unwrap())
        .collect();
    assert!(!uris.is_empty());
    // Import only this occupation's skills (the real ESCO rows).
    let lines: String = include_str!("../data/esco/skills.jsonl")
        .lines()
        .filter(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            uris.contains(v["uri"].as_str().unwrap())
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let imported_count = lines.lines().count();
    assert!(imported_count > 0);
    let imported = app
        .client
        .post(app.url("/v1/skills/import"))
        .bearer_auth(&o.admin)
        .header("content-type", "application/x-ndjson")
        .body(lines)
        .send()
        .await
        .unwrap();
    assert_eq!(imported.status(), 202, "{:?}", imported.text().await);
    // 202: the catalog shows the skills once its projection has applied them.
    let pool = app.store.pool().clone();
    wait_until(Duration::from_secs(10), "imported skills visible", || {
        let pool = pool.clone();
        async move {
            let n: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM rm_development_catalog.skills WHERE esco_uri IS NOT NULL",
            )
            .fetch_one(&pool)
            .await
            .unwrap();
            n as usize == imported_count
        }
    })
    .await;

    let label = occupation["label"].as_str().unwrap();
    let r = create_idp(
        &app,
        &o.employee,
        json!({"employee_id": o.employee_id, "title": "Grow into the role", "target_role": label}),
    )
    .await;
    assert_eq!(r.status(), 202, "{:?}", r.text().await);
    let id = json_of(r).await["id"].as_str().unwrap().to_owned();
    let idp = read_idp(&app, &o.employee, &id, 1).await;
    assert_eq!(idp["target_role"], occupation["uri"]);
    let targets = idp["target_skills"].as_array().unwrap();
    assert_eq!(targets.len(), imported_count, "{idp}");
    assert!(targets.iter().all(|t| t["level"] == 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_recommender_loses_no_plan_and_answers_none_twice() {
    killing_the_recommender(spawn_app().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_recommender_through_kafka_loses_no_plan() {
    let (_cluster, app) = spawn_kafka_app().await;
    // A killed group member's partitions move to its successor (uncommitted offsets are
    // redelivered) once the group rebalances.
    killing_the_recommender(app).await;
}

async fn killing_the_recommender(app: TestApp) {
    let o = org(&app, "Crashes").await;
    let c = catalog(&app, &o).await;
    let mut recommender = app.spawn_recommender().await;
    let mut ids = Vec::new();
    for round in 0..3u64 {
        // Create plans while the recommender works through them, then kill it at some point
        // of its work (before, during or after answering and checkpointing) and restart it.
        let mut creations = Vec::new();
        for i in 0..8 {
            let (app, token, employee) = (&app, &o.employee, &o.employee_id);
            let body = json!({"employee_id": employee, "title": format!("Plan {round}-{i}"),
                              "target_skills": targets(&c)});
            creations.push(async move { create_idp(app, token, body).await });
        }
        for r in futures::future::join_all(creations).await {
            assert_eq!(r.status(), 202);
            ids.push(json_of(r).await["id"].as_str().unwrap().to_owned());
        }
        tokio::time::sleep(Duration::from_millis(40 * round)).await;
        recommender.kill();
        recommender = app.spawn_recommender().await;
    }

    let store = &app.store;
    for id in &ids {
        let stream = StreamId::parse(&format!("idp-{id}")).unwrap();
        wait_until(Duration::from_secs(90), "every plan answered", || async {
            store
                .read_stream(&stream, 1, Direction::Forwards, 10)
                .await
                .unwrap()
                .len()
                >= 2
        })
        .await;
    }
    // Give redeliveries a moment to do damage if they could.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for id in &ids {
        let stream = StreamId::parse(&format!("idp-{id}")).unwrap();
        let events = store
            .read_stream(&stream, 1, Direction::Forwards, 10)
            .await
            .unwrap();
        let answers = events
            .iter()
            .filter(|e| {
                e.event_type == "IdpRecommendationsGenerated"
                    || e.event_type == "IdpRecommendationFailed"
            })
            .count();
        assert_eq!(answers, 1, "{id}: {events:?}");
        let idp = read_idp(&app, &o.employee, id, 2).await;
        assert!(
            idp["status"] == "active" || idp["status"] == "failed",
            "{idp}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_skills_fill_in_where_no_review_rated() {
    let app = spawn_app().await;
    let _recommender = app.spawn_recommender().await;
    let o = org(&app, "Declared").await;
    let c = catalog(&app, &o).await;
    let declare = |skill: &str, level: u8| json!({"skill_id": skill, "level": level});
    for (skill, level) in [(&c.postgres, 2), (&c.sql, 3)] {
        let r = app
            .post(
                "/v1/users/me/skills",
                Some(&o.employee),
                declare(skill, level),
            )
            .await;
        assert_eq!(r.status(), 201, "{:?}", r.text().await);
    }
    assert_field(
        app.post("/v1/users/me/skills", Some(&o.employee), declare(&c.sql, 6))
            .await,
        422,
        "level",
    )
    .await;
    let unknown = uuid::Uuid::now_v7().to_string();
    assert_field(
        app.post(
            "/v1/users/me/skills",
            Some(&o.employee),
            declare(&unknown, 2),
        )
        .await,
        422,
        "skill_id",
    )
    .await;
    let mine = json_of(app.get("/v1/users/me/skills", Some(&o.employee)).await).await;
    assert_eq!(mine["skills"].as_array().unwrap().len(), 2, "{mine}");

    let created = json_of(
        create_idp(
            &app,
            &o.employee,
            json!({"employee_id": o.employee_id, "title": "Databases", "target_skills": targets(&c)}),
        )
        .await,
    )
    .await;
    let idp = read_idp(&app, &o.employee, created["id"].as_str().unwrap(), 2).await;
    let current = |skill: &str| {
        idp["gaps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["skill_id"] == skill)
            .map(|g| g["current"].as_u64().unwrap())
    };
    // The review rated SQL 1: it wins over the declared 3. PostgreSQL was not reviewed: the
    // declared 2 counts. Statistics: reviewed 2.
    assert_eq!(current(&c.sql), Some(1), "{idp}");
    assert_eq!(current(&c.postgres), Some(2), "{idp}");
    assert_eq!(current(&c.stats), Some(2), "{idp}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_sees_projection_status_and_no_tenant_does() {
    let app = spawn_app().await;
    let o = org(&app, "Ops").await;
    // Deployment-wide data: no tenant role opens it, not even an organization's admin.
    for token in [Some(o.employee.as_str()), Some(o.admin.as_str()), None] {
        assert_eq!(app.get("/v1/ops/projections", token).await.status(), 401);
    }
    let status = json_of(app.get("/v1/ops/projections", Some(OPS_TOKEN)).await).await;
    let plans = status
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["projection"] == "development_plans")
        .unwrap_or_else(|| panic!("{status}"));
    assert_eq!(plans["state"], "live");
    assert!(plans["lag"].as_i64().unwrap() >= 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_version_on_an_unknown_or_foreign_plan_answers_404_at_once() {
    // Security probe: an unknown id used to wait the whole read-your-writes wait (5 s) while
    // another organization's id answered 404 at once: the time told which ids exist.
    let app = spawn_app().await;
    let o = org(&app, "Oracle").await;
    let other = org(&app, "Oracle elsewhere").await;
    let sql = skill(&app, &o.admin, "SQL", "").await;
    let created = create_idp(
        &app,
        &o.employee,
        json!({"employee_id": o.employee_id, "title": "Plan",
               "target_skills": [{"skill_id": sql, "target_level": 3}]}),
    )
    .await;
    assert_eq!(created.status(), 202);
    let id = json_of(created).await["id"].as_str().unwrap().to_owned();
    for (who, path) in [
        (
            &o.employee,
            format!("/v1/idps/{}?min_version=2", uuid::Uuid::now_v7()),
        ),
        (
            &o.employee,
            format!("/v1/idps/{}?min_version=1", uuid::Uuid::new_v4()),
        ),
        (&other.admin, format!("/v1/idps/{id}?min_version=2")),
        (&other.employee, format!("/v1/idps/{id}?min_version=1")),
    ] {
        let started = std::time::Instant::now();
        let response = app.get(&path, Some(who)).await;
        let took = started.elapsed();
        assert_eq!(response.status(), 404, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        assert!(took < Duration::from_millis(500), "{path} took {took:?}");
    }
    // The caller's own plan still reads its write.
    let own = app
        .get(&format!("/v1/idps/{id}?min_version=1"), Some(&o.employee))
        .await;
    assert_eq!(own.status(), 200);
    assert_eq!(json_of(own).await["version"], 1);
}
