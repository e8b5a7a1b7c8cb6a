//! The skill catalog over HTTP: define, search, import; roles and tenants.

use serde_json::{Value, json};
use trellis_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_define_skills_that_members_find_by_name_or_alias() {
    let app = spawn_app().await;
    let (_, _, admin_email) = app.sign_up("Catalog").await;
    let admin = app.token(&admin_email).await;
    let (_, employee_email) = app.create_user(&admin, &["employee"], None).await;
    let employee = app.token(&employee_email).await;

    let rust = app
        .post(
            "/v1/skills",
            Some(&admin),
            json!({"name": "Rust", "aliases": ["rust-lang"]}),
        )
        .await;
    assert_eq!(rust.status(), 201);
    let rust_id = json_of(rust).await["id"].as_str().unwrap().to_owned();
    for name in ["Trust building", "Rustic carpentry", "Go"] {
        assert_eq!(
            app.post("/v1/skills", Some(&admin), json!({"name": name}))
                .await
                .status(),
            201
        );
    }
    let found = json_of(app.get("/v1/skills?q=rust", Some(&employee)).await).await;
    let names: Vec<&str> = found
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["Rust", "Rustic carpentry", "Trust building"]);
    assert_eq!(found[0]["id"], rust_id.as_str());
    let by_alias = json_of(app.get("/v1/skills?q=lang", Some(&employee)).await).await;
    assert_eq!(by_alias[0]["name"], "Rust");
    let wildcard = json_of(app.get("/v1/skills?q=%25", Some(&employee)).await).await;
    assert_eq!(
        wildcard.as_array().unwrap().len(),
        0,
        "wildcards match literally"
    );

    let refused = app
        .post("/v1/skills", Some(&employee), json!({"name": "Nope"}))
        .await;
    assert_eq!(refused.status(), 403);
    let bad = app
        .post("/v1/skills", Some(&admin), json!({"name": " "}))
        .await;
    assert_eq!(bad.status(), 422);
    assert_eq!(json_of(bad).await["errors"][0]["field"], "name");
    assert_eq!(
        app.get("/v1/skills?limit=0", Some(&employee))
            .await
            .status(),
        422
    );
    assert_eq!(app.get("/v1/skills", None).await.status(), 401);

    // Another organization's catalog is its own.
    let (_, _, other_email) = app.sign_up("Elsewhere").await;
    let other = app.token(&other_email).await;
    let theirs = json_of(app.get("/v1/skills?q=rust", Some(&other)).await).await;
    assert_eq!(theirs, json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_esco_import_endpoint_is_idempotent_and_names_bad_lines() {
    let app = spawn_app().await;
    let (_, _, admin_email) = app.sign_up("Import").await;
    let admin = app.token(&admin_email).await;
    let data = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../data/esco/skills.jsonl"
    ))
    .unwrap();
    let sample: String = data.lines().take(40).map(|l| format!("{l}\n")).collect();
    let import = |body: String| {
        app.client
            .post(app.url("/v1/skills/import"))
            .bearer_auth(&admin)
            .header("content-type", "application/x-ndjson")
            .body(body)
            .send()
    };
    let first = import(sample.clone()).await.unwrap();
    assert_eq!(first.status(), 202);
    assert_eq!(json_of(first).await, json!({"imported": 40, "skipped": 0}));
    let again = import(sample).await.unwrap();
    assert_eq!(json_of(again).await, json!({"imported": 0, "skipped": 40}));
    let broken = import("{\"uri\": \"x\"}\nnot json\n".into()).await.unwrap();
    assert_eq!(broken.status(), 422);
    let body = json_of(broken).await;
    assert_eq!(body["errors"][0]["field"], "body[line 1]");
    // A defined ESCO skill has the same id as its imported twin: defining it again conflicts.
    let first_line: Value = serde_json::from_str(data.lines().next().unwrap()).unwrap();
    let twin = app
        .post(
            "/v1/skills",
            Some(&admin),
            json!({"name": "Again", "esco_uri": first_line["uri"]}),
        )
        .await;
    assert_eq!(twin.status(), 409);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_are_published_by_allowed_roles_for_known_skills_only() {
    let app = spawn_app().await;
    let (_, _, admin_email) = app.sign_up("Resources").await;
    let admin = app.token(&admin_email).await;
    let skill = json_of(
        app.post("/v1/skills", Some(&admin), json!({"name": "Rust"}))
            .await,
    )
    .await;
    let skill_id = skill["id"].as_str().unwrap().to_owned();
    let (_, instructor_email) = app.create_user(&admin, &["instructor"], None).await;
    let instructor = app.token(&instructor_email).await;
    let (_, learner_email) = app.create_user(&admin, &["learner"], None).await;
    let learner = app.token(&learner_email).await;
    let resource = |skills: Value, difficulty: i64| {
        json!({"title": "Rust in practice", "kind": "course", "duration_minutes": 300,
               "difficulty": difficulty, "skills": skills})
    };
    let ok = app
        .post(
            "/v1/resources",
            Some(&instructor),
            resource(json!([{"skill_id": skill_id, "level": 3}]), 2),
        )
        .await;
    assert_eq!(ok.status(), 201);
    assert_eq!(json_of(ok).await["version"], 1);
    let refused = app
        .post(
            "/v1/resources",
            Some(&learner),
            resource(json!([{"skill_id": skill_id, "level": 3}]), 2),
        )
        .await;
    assert_eq!(refused.status(), 403);
    let unknown = app
        .post(
            "/v1/resources",
            Some(&admin),
            resource(json!([{"skill_id": uuid::Uuid::now_v7(), "level": 3}]), 2),
        )
        .await;
    assert_eq!(unknown.status(), 422);
    assert_eq!(
        json_of(unknown).await["errors"][0]["field"],
        "skills[0].skill_id"
    );
    let too_hard = app
        .post(
            "/v1/resources",
            Some(&admin),
            resource(json!([{"skill_id": skill_id, "level": 3}]), 6),
        )
        .await;
    assert_eq!(too_hard.status(), 422);
    assert_eq!(json_of(too_hard).await["errors"][0]["field"], "difficulty");
    let empty = app
        .post("/v1/resources", Some(&admin), resource(json!([]), 2))
        .await;
    assert_eq!(empty.status(), 422);
    assert_eq!(json_of(empty).await["errors"][0]["field"], "skills");
    let bad_level = app
        .post(
            "/v1/resources",
            Some(&admin),
            resource(json!([{"skill_id": skill_id, "level": 0}]), 2),
        )
        .await;
    assert_eq!(bad_level.status(), 422);
    assert_eq!(
        json_of(bad_level).await["errors"][0]["field"],
        "skills[0].level"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_characters_are_refused_with_the_field_not_a_5xx() {
    // Found by schemathesis: PostgreSQL cannot store NUL in jsonb or text.
    let app = spawn_app().await;
    let (_, _, admin_email) = app.sign_up("Nul").await;
    let admin = app.token(&admin_email).await;
    let response = app
        .post(
            "/v1/skills",
            Some(&admin),
            json!({"name": "a\u{0}b", "aliases": ["ok"]}),
        )
        .await;
    assert_eq!(response.status(), 422);
    assert_eq!(json_of(response).await["errors"][0]["field"], "name");
    let import = app
        .client
        .post(app.url("/v1/skills/import"))
        .bearer_auth(&admin)
        .body("{\"uri\": \"http://x/1\", \"label\": \"a\\u0000b\"}\n")
        .send()
        .await
        .unwrap();
    assert_eq!(import.status(), 422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_characters_in_query_parameters_are_refused_too() {
    let app = spawn_app().await;
    let (_, _, admin_email) = app.sign_up("Nul query").await;
    let admin = app.token(&admin_email).await;
    let search = app.get("/v1/skills?q=a%00b", Some(&admin)).await;
    assert_eq!(search.status(), 422);
    assert_eq!(json_of(search).await["errors"][0]["field"], "q");
    let audit = app.get("/v1/audit/events?type=a%00b", Some(&admin)).await;
    assert_eq!(audit.status(), 422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_paths_and_query_parameters_are_problem_json_too() {
    let app = spawn_app().await;
    let (_, _, admin_email) = app.sign_up("Shapes").await;
    let admin = app.token(&admin_email).await;
    let path = app
        .post("/v1/users/not-a-uuid/deactivate", Some(&admin), json!({}))
        .await;
    assert_eq!(path.status(), 404);
    assert_eq!(path.headers()["content-type"], "application/problem+json");
    let query = app.get("/v1/skills?limit=many", Some(&admin)).await;
    assert_eq!(query.status(), 422);
    assert_eq!(query.headers()["content-type"], "application/problem+json");
    assert_eq!(json_of(query).await["errors"][0]["field"], "limit");
    let me = app.get("/v1/users/me?min_version=-1", Some(&admin)).await;
    assert_eq!(me.status(), 422);
    assert_eq!(json_of(me).await["errors"][0]["field"], "min_version");
}

/// `n` synthetic ESCO lines, numbered from `from`.
fn esco_lines(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| {
            format!("{{\"uri\": \"http://example.com/skill/{i}\", \"label\": \"Skill {i}\"}}\n")
        })
        .collect()
}

async fn import(app: &TestApp, token: &str, body: String) -> reqwest::Response {
    app.client
        .post(app.url("/v1/skills/import"))
        .bearer_auth(token)
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn assert_rate_limited(response: reqwest::Response) {
    assert_eq!(response.status(), 429);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=61).contains(&retry_after), "{retry_after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_are_capped_in_lines_and_charged_by_size() {
    // Security probe: a 2,000-line import cost one unit of the expensive budget, like a
    // one-line one, and delayed other organizations' recommendations.
    let app = spawn_app_with(|c| c.expensive_limit_per_user = 4).await;
    let (_, _, admin_email) = app.sign_up("Big import").await;
    let admin = app.token(&admin_email).await;

    let too_long = import(&app, &admin, esco_lines(0, 2_001)).await;
    assert_eq!(too_long.status(), 422);
    let body = json_of(too_long).await;
    assert_eq!(body["errors"][0]["field"], "body");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("2000"),
        "{body}"
    );
    // Blank lines are not counted (an import costs at least one unit: 1 of 4 spent).
    assert_eq!(
        import(&app, &admin, "\n\n".repeat(3_000)).await.status(),
        202
    );

    // 250 lines are 3 units (one per started 100): the rest of the budget...
    let first = import(&app, &admin, esco_lines(0, 250)).await;
    assert_eq!(first.status(), 202);
    assert_eq!(json_of(first).await["imported"], 250);
    // ...so even one more line is refused this minute, and nothing is imported.
    assert_rate_limited(import(&app, &admin, esco_lines(250, 1)).await).await;
    let found = json_of(app.get("/v1/skills?q=Skill%20250", Some(&admin)).await).await;
    assert_eq!(found, json!([]));
}

/// Waits until the catalog read model shows a skill named `name`.
async fn searchable(app: &TestApp, token: &str, name: &str) {
    let path = format!("/v1/skills?q={}", name.replace(' ', "%20"));
    wait_until(std::time::Duration::from_secs(10), name, || async {
        let found = json_of(app.get(&path, Some(token)).await).await;
        found
            .as_array()
            .is_some_and(|a| a.iter().any(|s| s["name"] == name))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organizations_catalog_is_bounded() {
    let app = spawn_app().await;
    let (organization_id, _, admin_email) = app.sign_up("Full catalog").await;
    let admin = app.token(&admin_email).await;
    // One skill through the API, so the read model exists; then fill the catalog up to one
    // short of the limit directly in the read model (20,000 imports would take minutes).
    let first = import(&app, &admin, esco_lines(0, 1)).await;
    assert_eq!(first.status(), 202);
    searchable(&app, &admin, "Skill 0").await;
    sqlx::query(
        "INSERT INTO rm_development_catalog.skills \
             (skill_id, organization_id, name, description, aliases, aliases_text, position, \
              version, created_at) \
         SELECT gen_random_uuid(), $1, 'Filler ' || i, '', '{}', '', -i, 1, now() \
         FROM generate_series(1, $2) AS i",
    )
    .bind(uuid::Uuid::parse_str(&organization_id).unwrap())
    .bind(i64::try_from(trellis_development_app::catalog::MAX_SKILLS_PER_ORGANIZATION).unwrap() - 2)
    .execute(app.store.pool())
    .await
    .unwrap();

    // Two new skills would pass the limit: refused, naming it, with nothing imported.
    let over = import(&app, &admin, esco_lines(1, 2)).await;
    assert_eq!(over.status(), 409);
    let detail = json_of(over).await["detail"].as_str().unwrap().to_owned();
    assert!(detail.contains("20000"), "{detail}");
    // Re-importing what is there adds nothing and passes; one new skill fits.
    let again = import(&app, &admin, esco_lines(0, 1)).await;
    assert_eq!(json_of(again).await, json!({"imported": 0, "skipped": 1}));
    let last = import(&app, &admin, esco_lines(1, 1)).await;
    assert_eq!(json_of(last).await, json!({"imported": 1, "skipped": 0}));
    searchable(&app, &admin, "Skill 1").await;
    // Full: no more, by import or by hand.
    assert_eq!(import(&app, &admin, esco_lines(2, 1)).await.status(), 409);
    let by_hand = app
        .post("/v1/skills", Some(&admin), json!({"name": "One more"}))
        .await;
    assert_eq!(by_hand.status(), 409);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_spends_the_callers_write_budget() {
    // Security probe: cheap commands had no budget (40 plans in 0.6 s, 400 re-ratings).
    let app = spawn_app_with(|c| c.write_limit_per_user = 5).await;
    let (_, _, admin_email) = app.sign_up("Writes").await;
    let admin = app.token(&admin_email).await;
    let skill = json_of(
        app.post("/v1/skills", Some(&admin), json!({"name": "Rust"}))
            .await,
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let resource = app
        .post(
            "/v1/resources",
            Some(&admin),
            json!({"title": "Rust in practice", "kind": "course", "duration_minutes": 60,
                   "difficulty": 2, "skills": [{"skill_id": skill, "level": 3}]}),
        )
        .await;
    assert_eq!(resource.status(), 201);
    let resource = json_of(resource).await["id"].as_str().unwrap().to_owned();
    let rating = format!("/v1/resources/{resource}/ratings");
    for rating_value in [3, 4, 5] {
        assert_eq!(
            app.post(&rating, Some(&admin), json!({"rating": rating_value}))
                .await
                .status(),
            201
        );
    }
    // Five writes spent: the sixth, of any kind, is refused.
    assert_rate_limited(app.post(&rating, Some(&admin), json!({"rating": 2})).await).await;
    assert_rate_limited(
        app.post("/v1/skills", Some(&admin), json!({"name": "Go"}))
            .await,
    )
    .await;
    assert_rate_limited(
        app.post(
            "/v1/users/me/skills",
            Some(&admin),
            json!({"skill_id": skill, "level": 2}),
        )
        .await,
    )
    .await;
    // Reads are not writes; another user has their own budget.
    assert_eq!(app.get("/v1/skills", Some(&admin)).await.status(), 200);
    let (_, _, other_email) = app.sign_up("Other writer").await;
    let other = app.token(&other_email).await;
    assert_eq!(
        app.post("/v1/skills", Some(&other), json!({"name": "Go"}))
            .await
            .status(),
        201
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unchanged_rating_appends_nothing_and_answers_as_before() {
    use trellis_kernel::{Direction, EventStore, StreamId};
    let app = spawn_app().await;
    let (_, _, admin_email) = app.sign_up("Ratings").await;
    let admin = app.token(&admin_email).await;
    let skill = json_of(
        app.post("/v1/skills", Some(&admin), json!({"name": "Rust"}))
            .await,
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let resource = json_of(
        app.post(
            "/v1/resources",
            Some(&admin),
            json!({"title": "Rust in practice", "kind": "course", "duration_minutes": 60,
                   "difficulty": 2, "skills": [{"skill_id": skill, "level": 3}]}),
        )
        .await,
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/v1/resources/{resource}/ratings");
    let mut versions = Vec::new();
    for value in [4, 4, 4, 5, 5] {
        let response = app
            .post(&path, Some(&admin), json!({"rating": value}))
            .await;
        assert_eq!(response.status(), 201);
        versions.push(json_of(response).await["version"].as_u64().unwrap());
    }
    assert_eq!(versions, vec![2, 2, 2, 3, 3]);
    let stream = StreamId::new("resource", uuid::Uuid::parse_str(&resource).unwrap()).unwrap();
    let events = app
        .store
        .read_stream(&stream, 1, Direction::Forwards, 100)
        .await
        .unwrap();
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        vec!["ResourcePublished", "ResourceRated", "ResourceRated"]
    );
}

/// docs/security.md, "Input limits": every free-text field has a limit and refuses control and
/// bidirectional-override characters; links are http(s) only. Each refusal is 422 naming the
/// field, and nothing is appended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_long_text_script_urls_and_bidi_overrides_answer_422_naming_the_field() {
    use trellis_development::limits::{RESOURCE_DESCRIPTION_MAX, SKILL_DESCRIPTION_MAX};

    let app = spawn_app().await;
    let (_, _, admin_email) = app.sign_up("Limits").await;
    let admin = app.token(&admin_email).await;
    let refused = async |path: &str, body: Value, field: &str| {
        let response = app.post(path, Some(&admin), body.clone()).await;
        assert_eq!(response.status(), 422, "{path} {body}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        let problem = json_of(response).await;
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
        problem["errors"][0]["message"].as_str().unwrap().to_owned()
    };

    // Skills: an over-long description, a bidi override in the name and in an alias.
    let message = refused(
        "/v1/skills",
        json!({"name": "Rust", "description": "d".repeat(SKILL_DESCRIPTION_MAX + 1)}),
        "description",
    )
    .await;
    assert!(
        message.contains(&SKILL_DESCRIPTION_MAX.to_string()),
        "{message}"
    );
    let message = refused("/v1/skills", json!({"name": "Rust\u{202E}gpj.exe"}), "name").await;
    assert!(message.contains("bidirectional"), "{message}");
    refused(
        "/v1/skills",
        json!({"name": "Rust", "aliases": ["rust", "r\u{2067}ust"]}),
        "aliases[1]",
    )
    .await;
    refused("/v1/skills", json!({"name": "Rust\u{1b}[31m"}), "name").await;
    refused(
        "/v1/skills",
        json!({"name": "Rust", "esco_uri": "javascript:alert(1)"}),
        "esco_uri",
    )
    .await;

    // Resources: script, data and file URLs; an over-long description; a bidi title.
    let skill = json_of(
        app.post("/v1/skills", Some(&admin), json!({"name": "Rust"}))
            .await,
    )
    .await;
    let skill_id = skill["id"].as_str().unwrap().to_owned();
    let resource = |extra: Value| {
        let mut body = json!({"title": "Rust in practice", "kind": "course",
            "duration_minutes": 300, "difficulty": 2,
            "skills": [{"skill_id": skill_id, "level": 3}]});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    for url in [
        "javascript:alert(document.cookie)",
        "JavaScript:alert(1)",
        "data:text/html;base64,PHNjcmlwdD4=",
        "file:///etc/passwd",
        "https://exa mple.com",
    ] {
        let message = refused("/v1/resources", resource(json!({"url": url})), "url").await;
        assert!(message.contains("http"), "{message}");
    }
    refused(
        "/v1/resources",
        resource(json!({"description": "d".repeat(RESOURCE_DESCRIPTION_MAX + 1)})),
        "description",
    )
    .await;
    refused(
        "/v1/resources",
        resource(json!({"title": "Rust \u{202D}in practice"})),
        "title",
    )
    .await;
    let ok = app
        .post(
            "/v1/resources",
            Some(&admin),
            resource(json!({"url": "https://doc.rust-lang.org/book/",
                            "description": "Chapters 1 to 3.\nThen the exercises."})),
        )
        .await;
    assert_eq!(ok.status(), 201, "{:?}", ok.text().await);

    // Identity: names refuse bidi overrides too.
    let response = app
        .post(
            "/v1/organizations",
            None,
            json!({"name": "Acme\u{202E}", "admin": {"email": "a@example.com",
                   "password": PASSWORD, "display_name": "Ada"}}),
        )
        .await;
    assert_eq!(response.status(), 422);
    assert_eq!(json_of(response).await["errors"][0]["field"], "name");
    let response = app
        .post(
            "/v1/users",
            Some(&admin),
            json!({"email": "b@example.com", "password": PASSWORD,
                   "display_name": "Bob\u{2066}", "roles": ["employee"]}),
        )
        .await;
    assert_eq!(response.status(), 422);
    assert_eq!(
        json_of(response).await["errors"][0]["field"],
        "display_name"
    );

    // Nothing refused reached the store: one skill and one resource besides identity events.
    let events: Vec<String> = sqlx::query_scalar(
        "SELECT event_type FROM events WHERE event_type IN ('SkillDefined', 'ResourcePublished')",
    )
    .fetch_all(app.store.pool())
    .await
    .unwrap();
    assert_eq!(events.len(), 2, "{events:?}");
}

/// The hits of `/v1/search` for `query` as `(kind, title, highlight)`.
async fn search_hits(app: &TestApp, token: &str, query: &str) -> Vec<(String, String, String)> {
    let found = json_of(app.get(&format!("/v1/search?{query}"), Some(token)).await).await;
    found
        .as_array()
        .unwrap_or_else(|| panic!("{found}"))
        .iter()
        .map(|h| {
            (
                h["kind"].as_str().unwrap().to_owned(),
                h["title"].as_str().unwrap().to_owned(),
                h["highlight"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_finds_skills_and_resources_by_words_parts_of_words_and_meaning() {
    let app = spawn_app().await;
    let (_, _, admin_email) = app.sign_up("Searchable catalog").await;
    let admin = app.token(&admin_email).await;
    let (_, learner_email) = app.create_user(&admin, &["learner"], None).await;
    let learner = app.token(&learner_email).await;
    let mut python = String::new();
    for (name, aliases, description) in [
        (
            "Python (computer programming)",
            json!(["Python3"]),
            "Writing software in the Python language.",
        ),
        (
            "Team leadership",
            json!([]),
            "Guiding a group of colleagues towards a shared goal.",
        ),
        ("Pastry baking", json!([]), "Making cakes & tarts."),
    ] {
        let r = app
            .post(
                "/v1/skills",
                Some(&admin),
                json!({"name": name, "aliases": aliases, "description": description}),
            )
            .await;
        assert_eq!(r.status(), 201);
        if python.is_empty() {
            python = json_of(r).await["id"].as_str().unwrap().to_owned();
        }
    }
    let published = app
        .post(
            "/v1/resources",
            Some(&admin),
            json!({"title": "Effective Python", "description": "Ninety ways to write better <code>",
                   "kind": "book", "duration_minutes": 600, "difficulty": 3,
                   "skills": [{"skill_id": python, "level": 3}]}),
        )
        .await;
    assert_eq!(published.status(), 201);

    // Whole words by full text, with the words marked and the rest escaped.
    let resources = search_hits(&app, &learner, "q=python&kind=resource").await;
    assert_eq!(resources.len(), 1, "{resources:?}");
    assert_eq!(resources[0].0, "resource");
    assert_eq!(resources[0].1, "Effective Python");
    assert!(
        resources[0].2.contains("<mark>Python</mark>"),
        "{resources:?}"
    );
    assert!(
        resources[0].2.contains("&lt;code") && !resources[0].2.contains("<code"),
        "{resources:?}"
    );
    // Part of a word (full text cannot see it) and an alias.
    let skills = search_hits(&app, &learner, "q=pyth&kind=skill").await;
    assert_eq!(skills[0].1, "Python (computer programming)", "{skills:?}");
    assert!(skills[0].2.contains("<mark>Pyth</mark>on"), "{skills:?}");
    let by_alias = search_hits(&app, &learner, "q=python3&kind=skill").await;
    assert_eq!(by_alias[0].1, "Python (computer programming)");
    // Meaning: no word in common; the catalog is embedded in the background after the first
    // query, so the hit appears within seconds.
    wait_until(
        std::time::Duration::from_secs(30),
        "a skill found by meaning",
        || async {
            search_hits(&app, &learner, "q=managing%20people&kind=skill")
                .await
                .first()
                .is_some_and(|hit| hit.1 == "Team leadership")
        },
    )
    .await;
    // Without `kind`, every kind: the skill and the resource both answer "python".
    let all = search_hits(&app, &learner, "q=python").await;
    let kinds: std::collections::BTreeSet<&str> = all.iter().map(|h| h.0.as_str()).collect();
    assert!(
        kinds.contains("skill") && kinds.contains("resource"),
        "{all:?}"
    );

    let bad = app
        .get("/v1/search?q=python&kind=recipe", Some(&learner))
        .await;
    assert_eq!(bad.status(), 422);
    assert_eq!(json_of(bad).await["errors"][0]["field"], "kind");
    // Another organization finds none of it.
    let (_, _, other_email) = app.sign_up("Elsewhere").await;
    let other = app.token(&other_email).await;
    assert!(search_hits(&app, &other, "q=python").await.is_empty());
    assert!(
        search_hits(&app, &other, "q=pyth&kind=skill")
            .await
            .is_empty()
    );
}
