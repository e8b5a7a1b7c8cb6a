//! Black-box tests of the identity API over HTTP against a running server, real PostgreSQL,
//! single-node mode.

use serde_json::{Value, json};
use trellis_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_up_then_logging_in_shows_the_admin_profile() {
    let app = spawn_app().await;
    let (org, admin, email) = app.sign_up("Acme Learning").await;
    let response = app.login(&email.to_uppercase(), PASSWORD).await;
    assert_eq!(response.status(), 200);
    let tokens = json_of(response).await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 300);
    assert!(tokens["refresh_token"].as_str().unwrap().len() >= 40);
    let me = json_of(
        app.get("/v1/users/me", tokens["access_token"].as_str())
            .await,
    )
    .await;
    assert_eq!(me["id"], admin.as_str());
    assert_eq!(me["email"], email.as_str());
    assert_eq!(me["roles"], json!(["admin"]));
    assert_eq!(
        me["organization"],
        json!({"id": org, "name": "Acme Learning"})
    );
    assert!(me.get("password_hash").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_tokens_rotate_and_reusing_an_old_one_revokes_the_family() {
    let app = spawn_app().await;
    let (_, _, email) = app.sign_up("Rotate").await;
    let first = json_of(app.login(&email, PASSWORD).await).await;
    let r1 = first["refresh_token"].as_str().unwrap().to_owned();
    let second = app
        .post("/v1/auth/refresh", None, json!({"refresh_token": r1}))
        .await;
    assert_eq!(second.status(), 200);
    let r2 = json_of(second).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(r1, r2);
    // Replaying r1 (a stolen token) fails and revokes the family, so r2 dies too.
    let replay = app
        .post("/v1/auth/refresh", None, json!({"refresh_token": r1}))
        .await;
    assert_problem(&replay, 401);
    let after = app
        .post("/v1/auth/refresh", None, json!({"refresh_token": r2}))
        .await;
    assert_problem(&after, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_revokes_the_refresh_token() {
    let app = spawn_app().await;
    let (_, _, email) = app.sign_up("Logout").await;
    let tokens = json_of(app.login(&email, PASSWORD).await).await;
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let out = app
        .post("/v1/auth/logout", None, json!({"refresh_token": refresh}))
        .await;
    assert_eq!(out.status(), 204);
    let again = app
        .post("/v1/auth/refresh", None, json!({"refresh_token": refresh}))
        .await;
    assert_problem(&again, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_and_unknown_email_answer_identically() {
    let app = spawn_app().await;
    let (_, _, email) = app.sign_up("Same").await;
    let wrong = app.login(&email, "wrong password 123").await;
    assert_problem(&wrong, 401);
    let unknown = app.login("nobody@example.com", PASSWORD).await;
    assert_problem(&unknown, 401);
    assert_eq!(json_of(wrong).await, json_of(unknown).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failed_logins_are_rate_limited_with_retry_after() {
    let app = spawn_app().await;
    let (_, _, email) = app.sign_up("Limits").await;
    for _ in 0..5 {
        assert_eq!(app.login(&email, "wrong password 123").await.status(), 401);
    }
    let limited = app.login(&email, "wrong password 123").await;
    assert_problem(&limited, 429);
    let retry: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=61).contains(&retry));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_failures_are_problem_json_naming_every_field() {
    let app = spawn_app().await;
    let bad = app
        .post(
            "/v1/organizations",
            None,
            json!({"name": " ", "admin": {"email": "nope", "password": "short", "display_name": "A"}}),
        )
        .await;
    assert_problem(&bad, 422);
    let body = json_of(bad).await;
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, vec!["name", "admin.email", "admin.password"]);
    assert_eq!(body["status"], 422);
    assert!(body["type"].as_str().unwrap().ends_with("/validation"));

    let missing = app
        .post(
            "/v1/organizations",
            None,
            json!({"name": "X", "admin": {"email": "a@b.co", "password": PASSWORD}}),
        )
        .await;
    assert_problem(&missing, 422);
    assert_eq!(
        json_of(missing).await["errors"][0]["field"],
        "admin.display_name"
    );

    let wrong_type = app
        .post(
            "/v1/organizations",
            None,
            json!({"name": 7, "admin": {"email": "a@b.co", "password": PASSWORD, "display_name": "A"}}),
        )
        .await;
    assert_problem(&wrong_type, 422);
    assert_eq!(json_of(wrong_type).await["errors"][0]["field"], "name");

    let garbage = app
        .client
        .post(app.url("/v1/auth/login"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_problem(&garbage, 400);

    // Its own client: the server answers 413 without reading the body and closes the
    // connection, which must not be reused for the next request.
    let huge = reqwest::Client::new()
        .post(app.url("/v1/auth/login"))
        .header("content-type", "application/json")
        .body(format!(
            "{{\"email\": \"{}\"}}",
            "a".repeat(2 * 1024 * 1024)
        ))
        .send()
        .await
        .unwrap();
    assert_problem(&huge, 413);

    let unknown_route = app.get("/v1/nothing-here", None).await;
    assert_problem(&unknown_route, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_can_register_once_per_organization() {
    let app = spawn_app().await;
    let (_, _, email) = app.sign_up("First").await;
    let admin = app.token(&email).await;
    let again = app
        .post(
            "/v1/users",
            Some(&admin),
            json!({"email": email, "password": PASSWORD, "display_name": "B", "roles": ["learner"]}),
        )
        .await;
    assert_problem(&again, 409);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_sign_up_is_refused() {
    let app = spawn_app_with(|c| c.signup_open = false).await;
    let response = app
        .post(
            "/v1/organizations",
            None,
            json!({"name": "X", "admin": {"email": "x@example.com", "password": PASSWORD, "display_name": "X"}}),
        )
        .await;
    assert_problem(&response, 403);
}

/// Every identity route × {no token, malformed, expired, other organization, each role}.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_authorization_matrix_holds_for_identity_routes() {
    let app = spawn_app().await;
    let (_, admin_id, admin_email) = app.sign_up("Org A").await;
    let admin = app.token(&admin_email).await;
    let (_, _, other_email) = app.sign_up("Org B").await;
    let other_admin = app.token(&other_email).await;
    let mut role_tokens = Vec::new();
    for role in ["manager", "employee", "instructor", "learner"] {
        let (_, email) = app.create_user(&admin, &[role], None).await;
        role_tokens.push((role, app.token(&email).await));
    }
    let (target, _) = app
        .create_user(&admin, &["employee"], Some(&admin_id))
        .await;
    let expired_config = trellis_api::ApiConfig {
        access_ttl: std::time::Duration::from_secs(0),
        ..Default::default()
    };
    let expired = trellis_api::auth::issue_access_token(
        &expired_config,
        admin_id.parse().unwrap(),
        uuid::Uuid::now_v7(),
        uuid::Uuid::now_v7(),
        vec!["admin".into()],
    )
    .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    let new_user = || {
        json!({"email": format!("n-{}@example.com", uuid::Uuid::now_v7().simple()),
               "password": PASSWORD, "display_name": "N", "roles": ["learner"]})
    };
    // Anonymous, malformed and expired tokens: 401 everywhere.
    let audit_stream = format!("/v1/audit/streams/user-{target}");
    let admin_posts = [
        (format!("/v1/users/{target}/deactivate"), json!({})),
        (
            format!("/v1/users/{target}/roles"),
            json!({"roles": ["learner"]}),
        ),
        (
            format!("/v1/users/{target}/manager"),
            json!({"manager_id": null}),
        ),
    ];
    for token in [None, Some("not-a-jwt"), Some(expired.as_str())] {
        for path in [
            "/v1/users/me",
            "/v1/me/events",
            "/v1/audit/events",
            &audit_stream,
        ] {
            assert_problem(&app.get(path, token).await, 401);
        }
        assert_problem(&app.post("/v1/users", token, new_user()).await, 401);
        for (path, body) in &admin_posts {
            assert_problem(&app.post(path, token, body.clone()).await, 401);
        }
        let password =
            json!({"current_password": PASSWORD, "new_password": "another good passphrase"});
        assert_problem(
            &app.post("/v1/users/me/password", token, password).await,
            401,
        );
    }
    // Non-admin roles: 403 on admin routes, their own profile on /me.
    for (role, token) in &role_tokens {
        assert_problem(&app.post("/v1/users", Some(token), new_user()).await, 403);
        for (path, body) in &admin_posts {
            assert_problem(&app.post(path, Some(token), body.clone()).await, 403);
        }
        assert_problem(&app.get("/v1/audit/events", Some(token)).await, 403);
        assert_problem(&app.get(&audit_stream, Some(token)).await, 403);
        let me = json_of(app.get("/v1/users/me", Some(token)).await).await;
        assert_eq!(me["roles"], json!([role]));
    }
    // Another organization's admin: the target does not exist for them.
    for (path, body) in &admin_posts {
        let cross = app.post(path, Some(&other_admin), body.clone()).await;
        assert_problem(&cross, 404);
        assert!(!cross.text().await.unwrap().contains(&target));
    }
    assert_problem(&app.get(&audit_stream, Some(&other_admin)).await, 404);
    let theirs = json_of(
        app.get("/v1/audit/events?limit=1000", Some(&other_admin))
            .await,
    )
    .await;
    assert!(
        !theirs.to_string().contains(&target),
        "no event of another organization"
    );
    let path = format!("/v1/users/{target}/deactivate");
    // The organization's admin may.
    assert_eq!(
        app.post("/v1/users", Some(&admin), new_user())
            .await
            .status(),
        201
    );
    assert_eq!(app.post(&path, Some(&admin), json!({})).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deactivation_ends_every_session_at_once() {
    let app = spawn_app().await;
    let (_, _, admin_email) = app.sign_up("Deactivate").await;
    let admin = app.token(&admin_email).await;
    let (user, email) = app.create_user(&admin, &["employee"], None).await;
    let tokens = json_of(app.login(&email, PASSWORD).await).await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(app.get("/v1/users/me", Some(access)).await.status(), 200);
    let path = format!("/v1/users/{user}/deactivate");
    assert_eq!(app.post(&path, Some(&admin), json!({})).await.status(), 200);
    assert_problem(&app.get("/v1/users/me", Some(access)).await, 401);
    let refresh = app
        .post(
            "/v1/auth/refresh",
            None,
            json!({"refresh_token": tokens["refresh_token"]}),
        )
        .await;
    assert_problem(&refresh, 401);
    assert_problem(&app.login(&email, PASSWORD).await, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_carry_a_server_made_correlation_id_the_client_request_id_and_the_actor() {
    let app = spawn_app().await;
    let (org, admin_id, admin_email) = app.sign_up("Audit").await;
    let admin = app.token(&admin_email).await;
    // A client's x-request-id (even a UUID another event already uses as its correlation)
    // is kept beside the correlation id, never used as it.
    let client_id = uuid::Uuid::now_v7();
    let response = app
        .client
        .post(app.url("/v1/users"))
        .bearer_auth(&admin)
        .header("x-request-id", client_id.to_string())
        .json(&json!({"email": "corr@example.com", "password": PASSWORD, "display_name": "C", "roles": ["employee"]}))
        .send()
        .await
        .unwrap();
    let request_id: uuid::Uuid = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_ne!(request_id, client_id);
    let id: uuid::Uuid = json_of(response).await["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    use trellis_kernel::EventStore;
    let stream = trellis_kernel::StreamId::new("user", id).unwrap();
    let events = app
        .store
        .read_stream(&stream, 1, trellis_kernel::Direction::Forwards, 10)
        .await
        .unwrap();
    assert_eq!(events[0].event_type, "UserRegistered");
    let meta = &events[0].metadata;
    assert_eq!(meta.correlation_id.map(|c| c.as_uuid()), Some(request_id));
    assert_eq!(
        meta.request_id.as_deref(),
        Some(client_id.to_string().as_str())
    );
    assert_eq!(
        meta.actor_id.map(|a| a.as_uuid().to_string()),
        Some(admin_id)
    );
    assert_eq!(meta.tenant_id.map(|t| t.as_uuid().to_string()), Some(org));
    // Stored encrypted (ADR 0017); read through the cipher, the argon2id hash.
    assert!(trellis_privacy::is_ciphertext(
        &events[0].payload["password_hash"]
    ));
    let events = trellis_kernel::personal::prepare(events).await.unwrap();
    assert!(
        events[0].payload["password_hash"]
            .as_str()
            .unwrap()
            .starts_with("$argon2id$")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_shows_a_user_streams_events_and_state_as_of_a_version_or_time() {
    let app = spawn_app().await;
    let (org, admin_id, admin_email) = app.sign_up("Audited").await;
    let admin = app.token(&admin_email).await;
    let (user, user_email) = app
        .create_user(&admin, &["employee"], Some(&admin_id))
        .await;
    let before_deactivation = chrono::Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let path = format!("/v1/users/{user}/deactivate");
    assert_eq!(app.post(&path, Some(&admin), json!({})).await.status(), 200);

    let audit = json_of(
        app.get(&format!("/v1/audit/streams/user-{user}"), Some(&admin))
            .await,
    )
    .await;
    let events = audit["events"].as_array().unwrap();
    let types: Vec<&str> = events
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(types, vec!["UserRegistered", "UserDeactivated"]);
    assert_eq!(events[0]["payload"]["password_hash"], "[redacted]");
    assert_eq!(events[0]["metadata"]["actor_id"], admin_id.as_str());
    assert_eq!(events[0]["metadata"]["tenant_id"], org.as_str());
    assert_eq!(audit["state"]["active"], false);
    assert_eq!(audit["state"]["manager_id"], admin_id.as_str());

    let v1 = json_of(
        app.get(
            &format!("/v1/audit/streams/user-{user}?as_of=1"),
            Some(&admin),
        )
        .await,
    )
    .await;
    assert_eq!(v1["as_of_version"], 1);
    assert_eq!(v1["state"]["active"], true);
    let at = before_deactivation.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let by_time = app
        .client
        .get(app.url(&format!("/v1/audit/streams/user-{user}")))
        .query(&[("as_of", at)])
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(by_time).await["state"]["active"], true);

    // Other organizations see nothing; non-admins of this one are refused.
    let (_, _, other_email) = app.sign_up("Elsewhere").await;
    let other = app.token(&other_email).await;
    assert_problem(
        &app.get(&format!("/v1/audit/streams/user-{user}"), Some(&other))
            .await,
        404,
    );
    assert_problem(&app.login(&user_email, PASSWORD).await, 401);
    let (_, manager_email) = app.create_user(&admin, &["manager"], None).await;
    let manager = app.token(&manager_email).await;
    assert_problem(
        &app.get(&format!("/v1/audit/streams/user-{user}"), Some(&manager))
            .await,
        403,
    );
    assert_problem(&app.get("/v1/audit/events", Some(&manager)).await, 403);

    // The organization's log, in order, paged.
    let page = json_of(app.get("/v1/audit/events?limit=2", Some(&admin)).await).await;
    assert_eq!(page["events"].as_array().unwrap().len(), 2);
    let after = page["next_after"].as_i64().unwrap();
    let rest = json_of(
        app.get(
            &format!("/v1/audit/events?after={after}&limit=1000"),
            Some(&admin),
        )
        .await,
    )
    .await;
    let all: Vec<Value> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rest["events"].as_array().unwrap())
        .cloned()
        .collect();
    assert!(
        all.iter()
            .all(|e| e["metadata"]["tenant_id"] == org.as_str())
    );
    let users_registered = all
        .iter()
        .filter(|e| e["event_type"] == "UserRegistered")
        .count();
    assert_eq!(users_registered, 3, "admin, the user and the manager");
    let only = json_of(
        app.get("/v1/audit/events?type=UserDeactivated", Some(&admin))
            .await,
    )
    .await;
    assert_eq!(only["events"].as_array().unwrap().len(), 1);
    assert_problem(
        &app.get("/v1/audit/events?limit=0", Some(&admin)).await,
        422,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_caller_hears_about_changes_to_them_over_server_sent_events() {
    let app = spawn_app().await;
    let (_, _, admin_email) = app.sign_up("Live").await;
    let admin = app.token(&admin_email).await;
    let (user, email) = app.create_user(&admin, &["employee"], None).await;
    let token = app.token(&email).await;
    let mut stream = app.get("/v1/me/events", Some(&token)).await;
    assert_eq!(stream.status(), 200);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    // Someone else's change is not sent; a change to this user is.
    let (other, _) = app.create_user(&admin, &["employee"], None).await;
    let roles = json!({"roles": ["employee", "learner"]});
    let other_path = format!("/v1/users/{other}/roles");
    assert_eq!(
        app.post(&other_path, Some(&admin), roles.clone())
            .await
            .status(),
        200
    );
    let path = format!("/v1/users/{user}/roles");
    assert_eq!(app.post(&path, Some(&admin), roles).await.status(), 200);
    let received = read_sse_until(
        &mut stream,
        "RolesAssigned",
        std::time::Duration::from_secs(10),
    )
    .await;
    assert!(received.contains("event: RolesAssigned"), "{received}");
    assert!(received.contains(&format!("user-{user}")), "{received}");
    assert!(!received.contains(&other), "{received}");
    let me = json_of(app.get("/v1/users/me", Some(&token)).await).await;
    assert_eq!(me["roles"], json!(["employee", "learner"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_change_their_password_with_the_current_one() {
    let app = spawn_app().await;
    let (_, _, email) = app.sign_up("Passwords").await;
    let token = app.token(&email).await;
    let wrong = app
        .post(
            "/v1/users/me/password",
            Some(&token),
            json!({"current_password": "not it at all 1", "new_password": "another good passphrase"}),
        )
        .await;
    assert_problem(&wrong, 422);
    assert_eq!(
        json_of(wrong).await["errors"][0]["field"],
        "current_password"
    );
    let weak = app
        .post(
            "/v1/users/me/password",
            Some(&token),
            json!({"current_password": PASSWORD, "new_password": "weak"}),
        )
        .await;
    assert_problem(&weak, 422);
    let ok = app
        .post(
            "/v1/users/me/password",
            Some(&token),
            json!({"current_password": PASSWORD, "new_password": "another good passphrase"}),
        )
        .await;
    assert_eq!(ok.status(), 200);
    assert_problem(&app.login(&email, PASSWORD).await, 401);
    assert_eq!(
        app.login(&email, "another good passphrase").await.status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managers_must_be_active_members_of_the_same_organization() {
    let app = spawn_app().await;
    let (_, admin_id, admin_email) = app.sign_up("Managers").await;
    let admin = app.token(&admin_email).await;
    let (_, _, other_email) = app.sign_up("Other").await;
    let other_admin = app.token(&other_email).await;
    let (foreigner, _) = app.create_user(&other_admin, &["manager"], None).await;
    let (user, _) = app.create_user(&admin, &["employee"], None).await;
    let path = format!("/v1/users/{user}/manager");
    let cross = app
        .post(&path, Some(&admin), json!({"manager_id": foreigner}))
        .await;
    assert_problem(&cross, 422);
    let own = app
        .post(&path, Some(&admin), json!({"manager_id": user}))
        .await;
    assert_problem(&own, 422);
    let ok = app
        .post(&path, Some(&admin), json!({"manager_id": admin_id}))
        .await;
    assert_eq!(ok.status(), 200);
    let bad_roles = app
        .post(
            &format!("/v1/users/{user}/roles"),
            Some(&admin),
            json!({"roles": ["root"]}),
        )
        .await;
    assert_problem(&bad_roles, 422);
    assert_eq!(json_of(bad_roles).await["errors"][0]["field"], "roles[0]");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_endpoints_report_health_readiness_and_metrics() {
    let app = spawn_app().await;
    assert_eq!(app.get("/healthz", None).await.status(), 200);
    let ready = json_of(app.get("/readyz", None).await).await;
    assert_eq!(
        ready,
        json!({"status": "ready", "postgres": "ok", "kafka": "single-node"})
    );
    let (_, _, email) = app.sign_up("Metrics").await;
    assert_eq!(app.login(&email, "wrong password 123").await.status(), 401);
    let token = app.token(&email).await;
    let me = json_of(app.get("/v1/users/me?min_version=1", Some(&token)).await).await;
    assert!(me["version"].as_i64().unwrap() >= 1);
    // Operational routes are the operator's, not any tenant's (not even an admin's).
    assert_problem(&app.get("/metrics", None).await, 401);
    assert_problem(&app.get("/metrics", Some(&token)).await, 401);
    let text = app
        .get("/metrics", Some(OPS_TOKEN))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(
            r#"trellis_http_requests_total{method="POST",route="/v1/auth/login",status="401"} 1"#
        ),
        "{text}"
    );
    assert!(text.contains(r#"trellis_http_request_duration_seconds_bucket{method="GET",route="/v1/users/me",le="+Inf"} 1"#));
    assert!(text.contains(r#"trellis_projection_lag_events{projection="identity_users"}"#));

    // A configured broker that does not answer makes the process unready.
    let unready = spawn_app_with(|c| c.kafka_brokers = Some("127.0.0.1:9".into())).await;
    assert_problem(&unready.get("/readyz", None).await, 503);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_every_route() {
    let app = spawn_app().await;
    let doc = json_of(app.get("/v1/openapi.json", None).await).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/v1/organizations",
        "/v1/auth/login",
        "/v1/auth/refresh",
        "/v1/auth/logout",
        "/v1/users",
        "/v1/users/me",
        "/v1/users/{id}/deactivate",
        "/v1/users/{id}/roles",
        "/v1/users/{id}/manager",
        "/v1/users/me/password",
        "/v1/audit/streams/{stream_id}",
        "/v1/audit/events",
        "/v1/me/events",
        "/readyz",
    ] {
        assert!(paths.contains_key(path), "{path} is missing");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert!(doc["components"]["schemas"]["SignUp"]["properties"]["admin"].is_object());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_cannot_deactivate_themselves() {
    let app = spawn_app().await;
    let (_, admin_id, email) = app.sign_up("Self").await;
    let token = app.token(&email).await;
    let response = app
        .post(
            &format!("/v1/users/{admin_id}/deactivate"),
            Some(&token),
            json!({}),
        )
        .await;
    assert_problem(&response, 409);
    assert_eq!(app.get("/v1/users/me", Some(&token)).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_works_end_to_end_through_kafka() {
    let (_cluster, app) = spawn_kafka_app().await;
    // Sign-up waits for the identity projection, which is fed through the relay and Kafka.
    let (org, _, email) = app.sign_up("Through Kafka").await;
    let token = app.token(&email).await;
    let me = json_of(app.get("/v1/users/me", Some(&token)).await).await;
    assert_eq!(me["organization"]["id"], org.as_str());
    let (user, _) = app.create_user(&token, &["employee"], None).await;
    let path = format!("/v1/users/{user}/roles");
    let changed = app
        .post(&path, Some(&token), json!({"roles": ["manager"]}))
        .await;
    assert_eq!(changed.status(), 200);
    let ready = json_of(app.get("/readyz", None).await).await;
    assert_eq!(ready["kafka"], "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expensive_requests_are_limited_per_user() {
    let app = spawn_app_with(|c| c.expensive_limit_per_user = 2).await;
    let (_, _, email) = app.sign_up("Budget").await;
    let token = app.token(&email).await;
    app.create_user(&token, &["learner"], None).await;
    app.create_user(&token, &["learner"], None).await;
    let third = app
        .post(
            "/v1/users",
            Some(&token),
            json!({"email": "third@example.com", "password": PASSWORD, "display_name": "T", "roles": ["learner"]}),
        )
        .await;
    assert_problem(&third, 429);
    assert!(third.headers().contains_key("retry-after"));
}
