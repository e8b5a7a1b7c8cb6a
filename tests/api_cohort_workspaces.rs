//! Group workspaces, pool webhooks (signed, retried, logged; a killed dispatcher delivers
//! after its restart), members' names, leaving a group, closing a pool, and the live feed
//! over a WebSocket.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use trellis_tests::*;

/// One request a receiver got.
#[derive(Clone, Debug)]
struct Received {
    signature: String,
    event_id: String,
    body: Vec<u8>,
    /// What the receiver answered.
    status: u16,
}

/// A local webhook receiver: answers 503 to its first `failures` requests, then 204.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    async fn start(failures: usize) -> Self {
        use axum::body::Bytes;
        use axum::http::{HeaderMap, StatusCode};
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let log = Arc::clone(&got);
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let log = Arc::clone(&log);
                async move {
                    let mut log = log.lock().unwrap();
                    let status = if log.len() < failures {
                        StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        StatusCode::NO_CONTENT
                    };
                    let header = |name: &str| {
                        headers
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned()
                    };
                    log.push(Received {
                        signature: header("trellis-signature"),
                        event_id: header("trellis-event-id"),
                        body: body.to_vec(),
                        status: status.as_u16(),
                    });
                    status
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, got }
    }

    /// The event types delivered (answered 2xx), in order.
    fn delivered(&self) -> Vec<String> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.status < 300)
            .map(|r| {
                serde_json::from_slice::<Value>(&r.body).unwrap()["type"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    }

    async fn wait_for(&self, types: &[&str]) {
        wait_until(
            Duration::from_secs(30),
            &format!("{types:?} delivered"),
            || async {
                let delivered = self.delivered();
                types.iter().all(|t| delivered.iter().any(|d| d == t))
            },
        )
        .await;
    }
}

/// The test's receivers listen on 127.0.0.1 (private: refused by default), and retries come
/// fast.
const LOCAL_RECEIVERS: &[(&str, &str)] = &[
    ("TRELLIS_WEBHOOKS_ALLOW_PRIVATE", "1"),
    ("TRELLIS_WEBHOOK_BACKOFF_MS", "200"),
];

fn local_receivers(config: &mut trellis_api::ApiConfig) {
    config.webhooks_allow_private = true;
}

fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// An organization with a trio pool: `(admin, pool id, learners as (id, token))`.
async fn trio(app: &TestApp, learners: usize) -> (String, String, Vec<(String, String)>) {
    let (_, _, admin_email) = app.sign_up("Workspaces").await;
    let admin = app.token(&admin_email).await;
    let pool = app
        .post(
            "/v1/cohorts/pools",
            Some(&admin),
            json!({"name": "Trios", "group_size": {"min": 3, "max": 3},
                   "batch": {"min_queue": 3, "max_wait_seconds": 600}}),
        )
        .await;
    assert_eq!(pool.status(), 201);
    let pool = json_of(pool).await["id"].as_str().unwrap().to_owned();
    let mut people = Vec::new();
    for _ in 0..learners {
        let (id, email) = app.create_user(&admin, &["learner"], None).await;
        people.push((id, app.token(&email).await));
    }
    (admin, pool, people)
}

async fn join_all(app: &TestApp, pool: &str, learners: &[(String, String)]) {
    for (_, token) in learners {
        let joined = app
            .post(
                &format!("/v1/cohorts/pools/{pool}/queue"),
                Some(token),
                json!({"goals": "Ship a Rust service", "timezone": "Europe/Lisbon",
                       "availability": [{"day": "tue", "start": "18:00", "end": "20:00"}]}),
            )
            .await;
        assert_eq!(joined.status(), 202);
    }
}

/// The group `token`'s learner is in, once formed.
async fn group_of(app: &TestApp, token: &str) -> Value {
    wait_for(Duration::from_secs(30), "a group formed", || async {
        let mine = json_of(app.get("/v1/me/groups", Some(token)).await).await;
        mine.as_array().and_then(|g| g.first()).cloned()
    })
    .await
}

/// Members plan projects and tasks; admins read along; strangers and outsiders get 404; a
/// member who leaves loses the group; and the pool's webhook hears every group event, signed,
/// after retries, with each attempt in its delivery log; a removed webhook hears nothing more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_works_in_its_workspace_and_its_webhook_hears_it() {
    let (_cluster, app) = spawn_kafka_app_with(local_receivers).await;
    let _matcher = app.spawn_service("matcher").await;
    let _webhooks = app.spawn_service_with("webhooks", LOCAL_RECEIVERS).await;
    let receiver = Receiver::start(2).await;
    let (admin, pool, learners) = trio(&app, 4).await;
    let hooks = format!("/v1/cohorts/pools/{pool}/webhooks");

    // Registering: admins and instructors only; the secret is shown once.
    let refused = app
        .post(&hooks, Some(&learners[0].1), json!({"url": receiver.url}))
        .await;
    assert_problem(&refused, 403);
    let bad = app
        .post(&hooks, Some(&admin), json!({"url": "ftp://example.com/x"}))
        .await;
    assert_eq!(field_of(bad).await, "url");
    let registered = app
        .post(&hooks, Some(&admin), json!({"url": receiver.url}))
        .await;
    assert_eq!(registered.status(), 201);
    let registered = json_of(registered).await;
    let secret = registered["secret"].as_str().unwrap().to_owned();
    assert!(
        secret.starts_with("whsec_") && secret.len() == 70,
        "{secret}"
    );
    let webhook = registered["id"].as_str().unwrap().to_owned();
    let again = app
        .post(&hooks, Some(&admin), json!({"url": receiver.url}))
        .await;
    assert_problem(&again, 409);
    let listed = json_of(app.get(&hooks, Some(&admin)).await).await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert!(listed[0].get("secret").is_none(), "{listed}");

    // Three learners form a trio (the fourth stays out of it).
    join_all(&app, &pool, &learners[..3]).await;
    let group = group_of(&app, &learners[0].1).await;
    let group_id = group["id"].as_str().unwrap().to_owned();
    let roster = group["roster"].as_array().unwrap();
    assert_eq!(roster.len(), 3, "{group}");
    assert!(
        roster.iter().all(|m| m["display_name"] == "User"),
        "{group}"
    );

    // The workspace.
    let projects = format!("/v1/cohorts/groups/{group_id}/projects");
    let (a, b) = (&learners[0].1, &learners[1].1);
    let (b_id, outsider) = (&learners[1].0, &learners[3].1);
    let created = app
        .post(&projects, Some(a), json!({"title": "Capstone"}))
        .await;
    assert_eq!(created.status(), 201);
    let created = json_of(created).await;
    let project = created["id"].as_str().unwrap().to_owned();
    // The group's version reads the write back (`?min_version=`, as every read of the API).
    let read_back = app
        .get(
            &format!("{projects}?min_version={}", created["version"]),
            Some(a),
        )
        .await;
    assert_eq!(read_back.status(), 200);
    assert_eq!(json_of(read_back).await[0]["id"], project.as_str());
    assert_eq!(
        field_of(
            app.get(&format!("{projects}?min_version=soon"), Some(a))
                .await
        )
        .await,
        "min_version"
    );
    assert_problem(
        &app.post(&projects, Some(outsider), json!({"title": "Mine"}))
            .await,
        404,
    );
    let tasks = format!("{projects}/{project}/tasks");
    let stranger_task = app
        .post(
            &tasks,
            Some(a),
            json!({"title": "Parser", "assignee": learners[3].0}),
        )
        .await;
    assert_eq!(field_of(stranger_task).await, "assignee");
    let added = app
        .post(
            &tasks,
            Some(a),
            json!({"title": "Parser", "assignee": b_id, "due": "2027-01-15"}),
        )
        .await;
    assert_eq!(added.status(), 201);
    let task = json_of(added).await["id"].as_str().unwrap().to_owned();
    let task_path = format!("/v1/cohorts/groups/{group_id}/tasks/{task}");
    let changed = app
        .patch(&task_path, b, json!({"state": "doing", "due": null}))
        .await;
    assert_eq!(changed.status(), 200);
    let bad_state = app.patch(&task_path, b, json!({"state": "finished"})).await;
    assert_problem(&bad_state, 422);
    let workspace = json_of(app.get(&projects, Some(&admin)).await).await;
    assert_eq!(workspace[0]["title"], "Capstone", "{workspace}");
    let the_task = &workspace[0]["tasks"][0];
    assert_eq!(the_task["state"], "doing", "{workspace}");
    assert_eq!(the_task["assignee"], b_id.as_str());
    assert_eq!(the_task["due"], Value::Null);
    assert_problem(&app.get(&projects, Some(outsider)).await, 404);

    // Another organization sees none of it.
    let (_, _, other_email) = app.sign_up("Elsewhere").await;
    let other = app.token(&other_email).await;
    assert_problem(&app.get(&projects, Some(&other)).await, 404);
    assert_problem(&app.get(&hooks, Some(&other)).await, 404);

    // A member leaves: the group is no longer theirs.
    let left = app.delete(&format!("/v1/me/groups/{group_id}"), b).await;
    assert_eq!(left.status(), 204);
    let mine = json_of(app.get("/v1/me/groups", Some(b)).await).await;
    assert_eq!(mine, json!([]));
    assert_problem(
        &app.post(&projects, Some(b), json!({"title": "Later"}))
            .await,
        404,
    );

    // The webhook heard all of it, signed with the secret, after two refused attempts.
    let types = [
        "GroupsFormed",
        "GroupOpened",
        "ProjectCreated",
        "TaskAdded",
        "TaskUpdated",
        "MemberLeftGroup",
    ];
    receiver.wait_for(&types).await;
    let got = receiver.got.lock().unwrap().clone();
    for request in &got {
        assert_eq!(request.signature, hmac_hex(&secret, &request.body));
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(body["pool_id"], pool.as_str());
        assert_eq!(body["id"], request.event_id.as_str());
        assert!(
            body["type"] != "MatchQueueJoined",
            "queue joins carry personal data"
        );
    }
    assert_eq!(got[0].status, 503);
    let log = json_of(
        app.get(&format!("{hooks}/{webhook}/deliveries"), Some(&admin))
            .await,
    )
    .await;
    let retried: Vec<&Value> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["attempts"].as_i64().unwrap() > 1)
        .collect();
    assert!(!retried.is_empty(), "{log}");
    let statuses: Vec<i64> = retried[0]["log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status"].as_i64().unwrap())
        .collect();
    assert_eq!(statuses.last(), Some(&204), "{log}");
    assert!(statuses.contains(&503), "{log}");
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .all(|d| d["state"] == "delivered"),
        "{log}"
    );
    assert_problem(
        &app.get(&format!("{hooks}/{webhook}/deliveries"), Some(a))
            .await,
        403,
    );

    // Removed: nothing more is sent.
    let removed = app.delete(&format!("{hooks}/{webhook}"), &admin).await;
    assert_eq!(removed.status(), 204);
    let before = receiver.got.lock().unwrap().len();
    let done = app.patch(&task_path, a, json!({"state": "done"})).await;
    assert_eq!(done.status(), 200);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.got.lock().unwrap().len(), before);
    assert_eq!(
        json_of(app.get(&hooks, Some(&admin)).await).await,
        json!([])
    );
    // A delivery recorded while the removal was on its way (the two travel on different
    // partitions) is cancelled, never sent.
    let db = app.store.pool();
    let webhook_id = uuid::Uuid::parse_str(&webhook).unwrap();
    wait_until(Duration::from_secs(15), "the removal handled", || async {
        sqlx::query_scalar::<_, bool>(
            "SELECT removed_at IS NOT NULL FROM cohort_webhook_secrets WHERE webhook_id = $1",
        )
        .bind(webhook_id)
        .fetch_one(db)
        .await
        .unwrap()
    })
    .await;
    let late = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO cohort_webhook_deliveries (webhook_id, event_id, organization_id, url, \
             event_type, global_position, body) \
         SELECT webhook_id, $2, organization_id, url, 'TaskUpdated', 1, '{}'::bytea \
         FROM cohort_webhook_deliveries WHERE webhook_id = $1 LIMIT 1",
    )
    .bind(webhook_id)
    .bind(late)
    .execute(db)
    .await
    .unwrap();
    let log = format!("{hooks}/{webhook}/deliveries");
    wait_until(
        Duration::from_secs(15),
        "the late delivery cancelled",
        || async {
            let log = json_of(app.get(&log, Some(&admin)).await).await;
            log.as_array()
                .unwrap()
                .iter()
                .any(|d| d["event_id"] == late.to_string() && d["state"] == "cancelled")
        },
    )
    .await;
    assert_eq!(receiver.got.lock().unwrap().len(), before);
}

/// The dispatcher is down while a group forms, then killed during deliveries: after each
/// restart every event reaches the receiver, and each event has one delivery in the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_webhook_dispatcher_delivers_after_a_restart() {
    let (_cluster, app) = spawn_kafka_app_with(local_receivers).await;
    let _matcher = app.spawn_service("matcher").await;
    let receiver = Receiver::start(0).await;
    let (admin, pool, learners) = trio(&app, 3).await;
    let hooks = format!("/v1/cohorts/pools/{pool}/webhooks");
    let registered = json_of(
        app.post(&hooks, Some(&admin), json!({"url": receiver.url}))
            .await,
    )
    .await;
    let webhook = registered["id"].as_str().unwrap().to_owned();
    join_all(&app, &pool, &learners).await;
    let group = group_of(&app, &learners[0].1).await;
    let group_id = group["id"].as_str().unwrap().to_owned();
    assert!(receiver.delivered().is_empty());

    let first = app.spawn_service_with("webhooks", LOCAL_RECEIVERS).await;
    receiver.wait_for(&["GroupsFormed", "GroupOpened"]).await;
    first.kill();
    // Work while it is dead.
    let projects = format!("/v1/cohorts/groups/{group_id}/projects");
    for title in ["One", "Two", "Three"] {
        let created = app
            .post(&projects, Some(&learners[0].1), json!({"title": title}))
            .await;
        assert_eq!(created.status(), 201);
    }
    let _second = app.spawn_service_with("webhooks", LOCAL_RECEIVERS).await;
    wait_until(
        Duration::from_secs(30),
        "three projects delivered",
        || async {
            let delivered = receiver.delivered();
            delivered.iter().filter(|t| *t == "ProjectCreated").count() >= 3
        },
    )
    .await;
    let delivered = receiver.delivered();
    assert_eq!(
        delivered.iter().filter(|t| *t == "ProjectCreated").count(),
        3,
        "{delivered:?}"
    );
    let log = json_of(
        app.get(&format!("{hooks}/{webhook}/deliveries"), Some(&admin))
            .await,
    )
    .await;
    let ids: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["event_id"].as_str().unwrap())
        .collect();
    let distinct: std::collections::BTreeSet<&&str> = ids.iter().collect();
    assert_eq!(ids.len(), distinct.len(), "{log}");
    assert_eq!(ids.len(), 5, "{log}");
}

/// `GET /v1/me/ws` carries what `GET /v1/me/events` does, authenticated by the bearer header
/// or, as browsers must, by a sub-protocol; private webhook targets are refused by default;
/// closing a pool is an instructor's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_carries_the_callers_live_messages() {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let app = spawn_app().await;
    let (admin, pool, learners) = trio(&app, 1).await;
    let token = &learners[0].1;
    let ws_url = app.url("/v1/me/ws").replacen("http", "ws", 1);

    let mut by_header = ws_url.as_str().into_client_request().unwrap();
    by_header
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut header_socket, _) = tokio_tungstenite::connect_async(by_header).await.unwrap();
    let mut by_protocol = ws_url.as_str().into_client_request().unwrap();
    by_protocol.headers_mut().insert(
        "sec-websocket-protocol",
        format!("trellis.v1, bearer.{token}").parse().unwrap(),
    );
    let (mut protocol_socket, response) =
        tokio_tungstenite::connect_async(by_protocol).await.unwrap();
    assert_eq!(
        response.headers()["sec-websocket-protocol"],
        "trellis.v1",
        "the server selects its protocol, never echoes the token"
    );
    let anonymous = tokio_tungstenite::connect_async(ws_url.as_str()).await;
    assert!(anonymous.is_err(), "a socket without a token");
    // The sub-protocol carries a token to the WebSocket route only.
    let elsewhere = app.url("/v1/me/groups").replacen("http", "ws", 1);
    let mut request = elsewhere.as_str().into_client_request().unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        format!("trellis.v1, bearer.{token}").parse().unwrap(),
    );
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 401);
        }
        other => panic!("{other:?}"),
    }
    // Not an upgrade: a problem, not a bare error.
    assert_problem(&app.get("/v1/me/ws", Some(token)).await, 400);

    join_all(&app, &pool, &learners).await;
    for socket in [&mut header_socket, &mut protocol_socket] {
        let message = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match socket.next().await.unwrap().unwrap() {
                    Message::Text(text) => return text.to_string(),
                    _ => continue,
                }
            }
        })
        .await
        .expect("a live message within 5 s");
        let message: Value = serde_json::from_str(&message).unwrap();
        assert_eq!(message["event"], "MatchQueueJoined", "{message}");
        assert_eq!(message["data"]["event_type"], "MatchQueueJoined");
        assert!(
            message["data"]["stream_id"]
                .as_str()
                .unwrap()
                .ends_with(&pool),
            "{message}"
        );
        assert!(message["id"].as_str().is_some(), "{message}");
    }

    // By default a webhook cannot point into the platform's own network.
    for private in [
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",
        "http://169.254.169.254/latest",
    ] {
        let refused = app
            .post(
                &format!("/v1/cohorts/pools/{pool}/webhooks"),
                Some(&admin),
                json!({"url": private}),
            )
            .await;
        assert_eq!(field_of(refused).await, "url", "{private}");
    }

    // Closing the pool: an instructor's or admin's; then nobody joins.
    let close = format!("/v1/cohorts/pools/{pool}/close");
    assert_problem(&app.post(&close, Some(token), json!({})).await, 403);
    assert_eq!(
        app.post(&close, Some(&admin), json!({})).await.status(),
        200
    );
    let read = json_of(
        app.get(&format!("/v1/cohorts/pools/{pool}"), Some(&admin))
            .await,
    )
    .await;
    assert_eq!(read["status"], "closed");
}
