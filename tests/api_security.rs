//! Regression tests for the findings of the outside security probe (issue "Hardening",
//! docs/security.md): each fails on the code before the fix.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use trellis_kernel::EventStore;
use trellis_tests::*;

async fn tokens(app: &TestApp, email: &str) -> (String, String) {
    let body = json_of(app.login(email, PASSWORD).await).await;
    (
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

// --- 1. forgeable tokens ----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_signed_with_the_old_public_default_key_is_refused() {
    let app = spawn_app().await;
    let (org, admin, email) = app.sign_up("Forgery").await;
    // Log in once so a session exists; the forged token names it too.
    let (real, _) = tokens(&app, &email).await;
    let sid = real.split('.').nth(1).unwrap();
    use base64::Engine;
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(sid)
            .unwrap(),
    )
    .unwrap();
    let forged_config = trellis_api::ApiConfig {
        jwt_secret: trellis_api::config::Secret::new(
            "trellis-development-secret-change-me-0123456789",
        ),
        ..trellis_api::ApiConfig::default()
    };
    let forged = trellis_api::auth::issue_access_token(
        &forged_config,
        admin.parse().unwrap(),
        org.parse().unwrap(),
        claims["sid"].as_str().unwrap().parse().unwrap(),
        vec!["admin".into()],
    )
    .unwrap();
    assert_problem(&app.get("/v1/users/me", Some(&forged)).await, 401);
    assert_eq!(app.get("/v1/users/me", Some(&real)).await.status(), 200);
}

// --- 3. Idempotency-Key ------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_replays_the_first_answer_and_refuses_another_body() {
    let app = spawn_app().await;
    let (_, _, email) = app.sign_up("Idempotent").await;
    let admin = app.token(&email).await;
    let user = |name: &str| {
        json!({"email": format!("{name}@example.com"), "password": PASSWORD,
               "display_name": name, "roles": ["learner"]})
    };
    let send = |key: &'static str, body: Value, token: String| {
        app.client
            .post(app.url("/v1/users"))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
    };
    let first = send("create-ada", user("ada"), admin.clone())
        .await
        .unwrap();
    assert_eq!(first.status(), 201);
    let first_body = json_of(first).await;
    let again = send("create-ada", user("ada"), admin.clone())
        .await
        .unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(json_of(again).await, first_body);
    // One user, one UserRegistered.
    let registered = app
        .store
        .read_all(None, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event_type == "UserRegistered")
        .count();
    assert_eq!(registered, 2, "the admin and ada, once");

    let other = send("create-ada", user("bob"), admin.clone())
        .await
        .unwrap();
    assert_problem(&other, 422);
    assert_eq!(
        json_of(other).await["errors"][0]["field"],
        "Idempotency-Key"
    );

    // Keys are scoped per organization and user: another tenant's same key is its own.
    let (_, _, other_email) = app.sign_up("Other tenant").await;
    let other_admin = app.token(&other_email).await;
    let theirs = send("create-ada", user("ada"), other_admin).await.unwrap();
    assert_eq!(theirs.status(), 201);
    assert!(theirs.headers().get("idempotent-replayed").is_none());
    assert_ne!(json_of(theirs).await["id"], first_body["id"]);

    for bad in ["", &"k".repeat(201)] {
        let response = app
            .client
            .post(app.url("/v1/users"))
            .bearer_auth(&admin)
            .header("Idempotency-Key", bad)
            .json(&user("carol"))
            .send()
            .await
            .unwrap();
        assert_problem(&response, 422);
    }
}

// --- 4. concurrent registrations of one address -------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_registrations_of_one_address_let_exactly_one_through() {
    let app = Arc::new(spawn_app().await);
    let (_, _, email) = app.sign_up("Race").await;
    let admin = app.token(&email).await;
    let barrier = Arc::new(tokio::sync::Barrier::new(4));
    let mut tasks = Vec::new();
    for i in 0..4 {
        let (app, barrier, admin) = (Arc::clone(&app), Arc::clone(&barrier), admin.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            app.post(
                "/v1/users",
                Some(&admin),
                json!({"email": "twin@example.com", "password": PASSWORD,
                       "display_name": format!("Twin {i}"), "roles": ["learner"]}),
            )
            .await
            .status()
            .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    statuses.sort_unstable();
    assert_eq!(statuses, vec![201, 409, 409, 409]);
    assert_eq!(app.login("twin@example.com", PASSWORD).await.status(), 200);
}

// --- 9. addresses per organization: no squatting, no enumeration --------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn addresses_are_unique_per_organization_and_released_on_deactivation() {
    let app = spawn_app().await;
    let (org_a, _, email) = app.sign_up("Squatter").await;
    // Another organization signing up with the same address learns nothing and loses
    // nothing: both succeed.
    let second = app
        .post(
            "/v1/organizations",
            None,
            json!({"name": "Victim", "admin": {"email": email, "password": PASSWORD, "display_name": "V"}}),
        )
        .await;
    assert_eq!(second.status(), 201);
    let org_b = json_of(second).await["organization_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The same password opens both: the client names the organization.
    let ambiguous = app.login(&email, PASSWORD).await;
    assert_problem(&ambiguous, 422);
    assert_eq!(
        json_of(ambiguous).await["errors"][0]["field"],
        "organization_id"
    );
    for org in [&org_a, &org_b] {
        let response = app
            .post(
                "/v1/auth/login",
                None,
                json!({"email": email, "password": PASSWORD, "organization_id": org}),
            )
            .await;
        assert_eq!(response.status(), 200);
        let token = json_of(response).await["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let me = json_of(app.get("/v1/users/me", Some(&token)).await).await;
        assert_eq!(me["organization"]["id"], org.as_str());
    }

    // Deactivation releases the address within the organization.
    let admin = {
        let response = app
            .post(
                "/v1/auth/login",
                None,
                json!({"email": email, "password": PASSWORD, "organization_id": org_a}),
            )
            .await;
        json_of(response).await["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (leaver, leaver_email) = app.create_user(&admin, &["learner"], None).await;
    let body = json!({"email": leaver_email, "password": PASSWORD,
                      "display_name": "Again", "roles": ["learner"]});
    assert_eq!(
        app.post("/v1/users", Some(&admin), body.clone())
            .await
            .status(),
        409
    );
    let deactivated = app
        .post(
            &format!("/v1/users/{leaver}/deactivate"),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(deactivated.status(), 200);
    assert_eq!(
        app.post("/v1/users", Some(&admin), body).await.status(),
        201
    );
}

// --- 5. no lock-out button ------------------------------------------------------------------

fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

async fn login_from(app: &TestApp, client: &reqwest::Client, email: &str, pw: &str) -> u16 {
    client
        .post(app.url("/v1/auth/login"))
        .json(&json!({"email": email, "password": pw}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_from_elsewhere_do_not_lock_the_owner_out() {
    let app = spawn_app().await;
    let (_, _, email) = app.sign_up("Lockout").await;
    let owner = client_from("127.0.0.1");
    let attacker = client_from("127.0.0.2");
    assert_eq!(login_from(&app, &owner, &email, PASSWORD).await, 200);
    let mut refused = 0;
    for _ in 0..20 {
        match login_from(&app, &attacker, &email, "wrong password 123").await {
            401 => {}
            429 => refused += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert!(refused > 0, "the attacker is slowed down");
    // Even the right password from the attacker's address waits...
    assert_eq!(login_from(&app, &attacker, &email, PASSWORD).await, 429);
    // ...but the owner, from a client that logged in before, gets in.
    assert_eq!(login_from(&app, &owner, &email, PASSWORD).await, 200);
    // Successes never count: many good logins are never refused.
    for _ in 0..15 {
        assert_eq!(login_from(&app, &owner, &email, PASSWORD).await, 200);
    }
}

// --- 6. sessions ----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_the_password_ends_every_other_session() {
    let app = spawn_app().await;
    let (_, _, email) = app.sign_up("Sessions").await;
    let (stolen_access, stolen_refresh) = tokens(&app, &email).await;
    let (mine, _) = tokens(&app, &email).await;
    let changed = app
        .post(
            "/v1/users/me/password",
            Some(&mine),
            json!({"current_password": PASSWORD, "new_password": "another good passphrase"}),
        )
        .await;
    assert_eq!(changed.status(), 200);
    let refresh = app
        .post(
            "/v1/auth/refresh",
            None,
            json!({"refresh_token": stolen_refresh}),
        )
        .await;
    assert_problem(&refresh, 401);
    assert_problem(&app.get("/v1/users/me", Some(&stolen_access)).await, 401);
    assert_eq!(app.get("/v1/users/me", Some(&mine)).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_tokens_have_an_absolute_lifetime_and_are_never_cached() {
    let app = spawn_app_with(|c| c.session_max_ttl = Duration::from_secs(2)).await;
    let (_, _, email) = app.sign_up("Absolute").await;
    let login = app.login(&email, PASSWORD).await;
    assert_eq!(login.headers()["cache-control"], "no-store");
    let mut refresh = json_of(login).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = app
        .post("/v1/auth/refresh", None, json!({"refresh_token": refresh}))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    refresh = json_of(response).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let expired = app
        .post("/v1/auth/refresh", None, json!({"refresh_token": refresh}))
        .await;
    assert_problem(&expired, 401);
}

// --- 7. slow and greedy clients ---------------------------------------------------------------

fn address_of(app: &TestApp) -> String {
    app.address.trim_start_matches("http://").to_owned()
}

/// Reads until the server closes; returns what it sent and how long that took.
async fn read_until_closed(stream: &mut tokio::net::TcpStream) -> (String, Duration) {
    let start = Instant::now();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut out)).await;
    (String::from_utf8_lossy(&out).into_owned(), start.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_client_is_cut_off_and_idle_connections_closed() {
    let app = spawn_app_with(|c| {
        c.connections.header_read_timeout = Duration::from_secs(1);
        c.connections.idle_timeout = Duration::from_secs(2);
    })
    .await;
    // Headers trickled one line a 400 ms, forever.
    let mut slow = tokio::net::TcpStream::connect(address_of(&app))
        .await
        .unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    let start = Instant::now();
    let mut closed = false;
    for i in 0..50 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        if slow
            .write_all(format!("x-slow-{i}: 1\r\n").as_bytes())
            .await
            .is_err()
        {
            closed = true;
            break;
        }
        let mut probe = [0u8; 1];
        if let Ok(Ok(0)) =
            tokio::time::timeout(Duration::from_millis(1), slow.read(&mut probe)).await
        {
            closed = true;
            break;
        }
    }
    assert!(closed, "the slow client was never cut off");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );

    // A connection that says nothing is closed after the idle timeout.
    let mut idle = tokio::net::TcpStream::connect(address_of(&app))
        .await
        .unwrap();
    let (_, took) = read_until_closed(&mut idle).await;
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_per_address_cap_get_a_problem_503() {
    let app = spawn_app_with(|c| c.connections.max_connections_per_ip = 2).await;
    let _one = tokio::net::TcpStream::connect(address_of(&app))
        .await
        .unwrap();
    let _two = tokio::net::TcpStream::connect(address_of(&app))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut third = tokio::net::TcpStream::connect(address_of(&app))
        .await
        .unwrap();
    let (answer, _) = read_until_closed(&mut third).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    // Another address is not affected.
    let other = client_from("127.0.0.3");
    let healthy = other.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(healthy.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_and_unknown_methods_answer_problem_json() {
    let app = spawn_app_with(|c| {
        // Long enough for a sign-up's password hashing in a debug build.
        c.connections.request_timeout = Duration::from_secs(8);
        c.max_read_wait = Duration::from_secs(30);
    })
    .await;
    let (_, _, email) = app.sign_up("Timeouts").await;
    let token = app.token(&email).await;
    let slow = app.get("/v1/users/me?min_version=999", Some(&token)).await;
    assert_problem(&slow, 503);
    let method = app
        .client
        .delete(app.url("/v1/users/me"))
        .send()
        .await
        .unwrap();
    assert_problem(&method, 405);
}

// --- 10. lower-severity findings ------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_streams_are_capped_per_user_and_end_with_the_session() {
    let app = spawn_app_with(|c| {
        c.live_streams_per_user = 2;
        c.live_recheck = Duration::from_millis(200);
    })
    .await;
    let (_, _, email) = app.sign_up("Streams").await;
    let (access, refresh) = tokens(&app, &email).await;
    let open = || app.get("/v1/me/events", Some(&access));
    let first = open().await;
    assert_eq!(first.status(), 200);
    let second = open().await;
    assert_eq!(second.status(), 200);
    assert_problem(&open().await, 429);
    drop(second);
    tokio::time::sleep(Duration::from_millis(100)).await;

    let logout = app
        .post("/v1/auth/logout", None, json!({"refresh_token": refresh}))
        .await;
    assert_eq!(logout.status(), 204);
    // The open stream ends by itself within a re-check.
    let mut body = first;
    let ended = tokio::time::timeout(Duration::from_secs(3), async {
        while let Ok(Some(_)) = body.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the stream outlived the session");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn common_passwords_are_refused() {
    let app = spawn_app().await;
    for weak in ["password1234", "aaaaaaaaaaa1"] {
        let response = app
            .post(
                "/v1/organizations",
                None,
                json!({"name": "Weak", "admin": {"email": "weak@example.com", "password": weak, "display_name": "W"}}),
            )
            .await;
        assert_problem(&response, 422);
        assert_eq!(
            json_of(response).await["errors"][0]["field"],
            "admin.password"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_admin_cannot_demote_themselves() {
    let app = spawn_app().await;
    let (_, admin_id, email) = app.sign_up("Last admin").await;
    let token = app.token(&email).await;
    let path = format!("/v1/users/{admin_id}/roles");
    let demote = app
        .post(&path, Some(&token), json!({"roles": ["learner"]}))
        .await;
    assert_problem(&demote, 409);
    // With a second admin, it is allowed.
    let (other, _) = app.create_user(&token, &["admin"], None).await;
    assert!(!other.is_empty());
    let demote = app
        .post(&path, Some(&token), json!({"roles": ["learner"]}))
        .await;
    assert_eq!(demote.status(), 200);
}

/// Which of `users` are active admins, as the read model says.
async fn active_admins_among(app: &TestApp, users: [&str; 2]) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT user_id::text FROM rm_identity_users.users \
         WHERE active AND 'admin' = ANY(roles) AND user_id::text = ANY($1)",
    )
    .bind(users.map(str::to_owned).to_vec())
    .fetch_all(app.store.pool())
    .await
    .unwrap()
}

/// What two admins do to the organization's admins at the same moment.
#[derive(Debug, Clone, Copy)]
enum AtOnce {
    /// Each gives up the admin role.
    GiveUpTheRole,
    /// Each deactivates the other.
    DeactivateEachOther,
    /// Each erases themself.
    EraseThemselves,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_admins_taking_each_other_away_at_once_leave_the_organization_one() {
    let app = spawn_app().await;
    let (_, id, email) = app.sign_up("Two admins").await;
    let mut admin = (id, app.token(&email).await);
    for race in [
        AtOnce::GiveUpTheRole,
        AtOnce::DeactivateEachOther,
        AtOnce::EraseThemselves,
    ]
    .into_iter()
    .cycle()
    .take(6)
    {
        let (other_id, other_email) = app.create_user(&admin.1, &["admin"], None).await;
        let other = (other_id, app.token(&other_email).await);
        let (a, b) = match race {
            AtOnce::GiveUpTheRole => (
                format!("/v1/users/{}/roles", admin.0),
                format!("/v1/users/{}/roles", other.0),
            ),
            AtOnce::DeactivateEachOther => (
                format!("/v1/users/{}/deactivate", other.0),
                format!("/v1/users/{}/deactivate", admin.0),
            ),
            AtOnce::EraseThemselves => (
                "/v1/users/me/erasure".to_owned(),
                "/v1/users/me/erasure".to_owned(),
            ),
        };
        let body = match race {
            AtOnce::GiveUpTheRole => json!({"roles": ["learner"]}),
            _ => json!({}),
        };
        let (a, b) = tokio::join!(
            app.post(&a, Some(&admin.1), body.clone()),
            app.post(&b, Some(&other.1), body),
        );
        let (a, b) = (a.status(), b.status());
        // The loser is refused as the last admin (409), or, already deactivated or erased,
        // is no longer signed in (401).
        assert!(
            a.is_success() != b.is_success(),
            "{race:?}: exactly one may succeed, got {a} and {b}"
        );
        let left = active_admins_among(&app, [&admin.0, &other.0]).await;
        assert_eq!(left.len(), 1, "{race:?}: {left:?}");
        if left[0] == other.0 {
            admin = other;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_with_duplicate_keys_is_refused() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/v1/auth/login"))
        .header("content-type", "application/json")
        .body(r#"{"email": "a@example.com", "password": "x", "password": "y"}"#)
        .send()
        .await
        .unwrap();
    assert_problem(&response, 422);
    assert_eq!(json_of(response).await["errors"][0]["field"], "password");
}
