//! Cohort pools and their match queue over HTTP: create, read, join, leave; roles, tenants and
//! named fields. (The matcher that forms groups is still to come: docs/cohorts.md.)

use serde_json::{Value, json};
use trellis_tests::*;

fn pool_body() -> Value {
    json!({"name": "Rust study groups", "group_size": {"min": 3, "max": 4},
           "criteria": [{"attribute": "skills", "mode": "diverse", "weight": 0.6},
                        {"attribute": "answers.role", "mode": "similar", "weight": 0.4}],
           "batch": {"min_queue": 12, "max_wait_seconds": 60}})
}

fn join_body(skill: &str) -> Value {
    json!({"skills": [{"skill_id": skill, "level": 2}], "goals": "Write async services",
           "timezone": "Europe/Lisbon",
           "availability": [{"day": "mon", "start": "18:00", "end": "20:00"}],
           "answers": {"role": "backend"}})
}

async fn delete(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    app.client
        .delete(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn learners_join_and_leave_a_pools_queue() {
    let app = spawn_app().await;
    let (_, _, admin_email) = app.sign_up("Cohorts").await;
    let admin = app.token(&admin_email).await;
    let (_, instructor_email) = app.create_user(&admin, &["instructor"], None).await;
    let instructor = app.token(&instructor_email).await;
    let (learner_id, learner_email) = app.create_user(&admin, &["learner"], None).await;
    let learner = app.token(&learner_email).await;
    let skill = app
        .post("/v1/skills", Some(&admin), json!({"name": "Rust"}))
        .await;
    let skill = json_of(skill).await["id"].as_str().unwrap().to_owned();

    let refused = app
        .post("/v1/cohorts/pools", Some(&learner), pool_body())
        .await;
    assert_problem(&refused, 403);
    let created = app
        .post("/v1/cohorts/pools", Some(&instructor), pool_body())
        .await;
    assert_eq!(created.status(), 201);
    let pool = json_of(created).await["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/cohorts/pools/{pool}");

    let read = json_of(app.get(&path, Some(&learner)).await).await;
    assert_eq!(read["status"], "open");
    assert_eq!(read["queue_size"], 0);
    assert_eq!(read["group_size"], json!({"min": 3, "max": 4}));
    assert!(read.get("your_ticket").is_none());

    // Joining: 202 with a ticket; the pool shows it at once.
    let queue = format!("{path}/queue");
    let joined = app.post(&queue, Some(&learner), join_body(&skill)).await;
    assert_eq!(joined.status(), 202);
    let joined = json_of(joined).await;
    assert_eq!(joined["status"], "queued");
    let ticket = joined["ticket_id"].as_str().unwrap().to_owned();
    let read = json_of(app.get(&path, Some(&learner)).await).await;
    assert_eq!(read["queue_size"], 1);
    assert_eq!(read["your_ticket"]["ticket_id"], ticket.as_str());
    assert_eq!(read["your_ticket"]["status"], "queued");
    // One open ticket per learner per pool.
    assert_problem(
        &app.post(&queue, Some(&learner), join_body(&skill)).await,
        409,
    );
    // Only learners queue.
    assert_problem(
        &app.post(&queue, Some(&instructor), join_body(&skill)).await,
        403,
    );

    // Leaving: 204, the ticket is `left`; leaving again changes nothing.
    assert_eq!(delete(&app, &queue, &learner).await.status(), 204);
    let read = json_of(app.get(&path, Some(&learner)).await).await;
    assert_eq!(read["queue_size"], 0);
    assert_eq!(read["your_ticket"]["status"], "left");
    assert_eq!(delete(&app, &queue, &learner).await.status(), 204);

    // The audit shows the queue's history on the pool's stream, the learner as actor.
    let audit = json_of(
        app.get(
            &format!("/v1/audit/streams/cohort_pool-{pool}"),
            Some(&admin),
        )
        .await,
    )
    .await;
    let types: Vec<&str> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["PoolCreated", "MatchQueueJoined", "MatchQueueLeft"]);
    assert_eq!(
        audit["events"][1]["metadata"]["actor_id"],
        learner_id.as_str()
    );

    // Another organization: 404 for reading, joining and leaving.
    let (_, _, other_email) = app.sign_up("Elsewhere").await;
    let other_admin = app.token(&other_email).await;
    let (_, stranger_email) = app.create_user(&other_admin, &["learner"], None).await;
    let stranger = app.token(&stranger_email).await;
    assert_problem(&app.get(&path, Some(&stranger)).await, 404);
    assert_problem(
        &app.post(&queue, Some(&stranger), join_body(&skill)).await,
        404,
    );
    assert_problem(&delete(&app, &queue, &stranger).await, 404);
    assert_problem(&app.get(&path, None).await, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_pools_and_profiles_name_the_field() {
    let app = spawn_app().await;
    let (_, _, admin_email) = app.sign_up("Cohort rules").await;
    let admin = app.token(&admin_email).await;
    let (_, learner_email) = app.create_user(&admin, &["learner"], None).await;
    let learner = app.token(&learner_email).await;
    let skill = app
        .post("/v1/skills", Some(&admin), json!({"name": "Go"}))
        .await;
    let skill = json_of(skill).await["id"].as_str().unwrap().to_owned();

    let field_of = |response: reqwest::Response| async move {
        assert_problem(&response, 422);
        json_of(response).await["errors"][0]["field"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    for (change, field) in [
        (
            json!({"group_size": {"min": 5, "max": 3}}),
            "group_size.max",
        ),
        (
            json!({"group_size": {"min": 1, "max": 3}}),
            "group_size.min",
        ),
        (
            json!({"criteria": [{"attribute": "shoe_size", "mode": "similar", "weight": 0.5}]}),
            "criteria[0].attribute",
        ),
        (
            json!({"criteria": [{"attribute": "goals", "mode": "similar", "weight": 1.5}]}),
            "criteria[0].weight",
        ),
        (
            json!({"batch": {"min_queue": 2, "max_wait_seconds": 60}}),
            "batch.min_queue",
        ),
    ] {
        let mut body = pool_body();
        for (k, v) in change.as_object().unwrap() {
            body[k] = v.clone();
        }
        let response = app.post("/v1/cohorts/pools", Some(&admin), body).await;
        assert_eq!(field_of(response).await, field, "{change}");
    }

    let created = app
        .post("/v1/cohorts/pools", Some(&admin), pool_body())
        .await;
    let pool = json_of(created).await["id"].as_str().unwrap().to_owned();
    let queue = format!("/v1/cohorts/pools/{pool}/queue");
    for (change, field) in [
        (json!({"timezone": "Mars/Olympus_Mons"}), "timezone"),
        (
            json!({"skills": [{"skill_id": uuid::Uuid::now_v7(), "level": 2}]}),
            "skills[0].skill_id",
        ),
        (
            json!({"skills": [{"skill_id": skill, "level": 9}]}),
            "skills[0].level",
        ),
        (
            json!({"availability": [{"day": "mon", "start": "20:00", "end": "18:00"}]}),
            "availability[0].end",
        ),
        (json!({"answers": {}}), "answers.role"),
    ] {
        let mut body = join_body(&skill);
        for (k, v) in change.as_object().unwrap() {
            body[k] = v.clone();
        }
        let response = app.post(&queue, Some(&learner), body).await;
        assert_eq!(field_of(response).await, field, "{change}");
    }
    // Nothing was queued by the refused joins.
    let read = json_of(
        app.get(&format!("/v1/cohorts/pools/{pool}"), Some(&learner))
            .await,
    )
    .await;
    assert_eq!(read["queue_size"], 0);
    assert_problem(
        &app.get(
            &format!("/v1/cohorts/pools/{}", uuid::Uuid::now_v7()),
            Some(&learner),
        )
        .await,
        404,
    );
}
