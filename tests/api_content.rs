//! Content and the atomizer over HTTP, through the dev Kafka cluster (issue "Content and the
//! atomizer"): documents in five formats become atoms with every field, boundaries on their
//! headings, found by search with highlights; the audit stream shows the upload and its
//! answer under one correlation id; hostile files end as a 4xx or a failure with a reason
//! while the service stays healthy; a killed atomizer answers every content once after a
//! restart; another organization finds nothing.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use trellis_tests::{TestApp, assert_problem, json_of, spawn_kafka_app};

const HEADINGS: [&str; 5] = [
    "The Python Tutorial",
    "Whetting Your Appetite",
    "Defining Functions",
    "Classes",
    "Python Scopes and Namespaces",
];

fn fixture(folder: &str, name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/content")
        .join(folder)
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Uploads `bytes` as `name`; returns the response.
async fn upload(app: &TestApp, token: &str, name: &str, bytes: Vec<u8>) -> reqwest::Response {
    let form = reqwest::multipart::Form::new()
        .text("title", format!("Guide from {name}"))
        .text(
            "metadata",
            r#"{"author": "Guido van Rossum", "subject": "Python", "language": "en", "tags": ["python", "tutorial"]}"#,
        )
        .part("file", reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()));
    app.client
        .post(app.url("/v1/contents"))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await
        .unwrap()
}

async fn uploaded(app: &TestApp, token: &str, name: &str, bytes: Vec<u8>) -> String {
    let response = upload(app, token, name, bytes).await;
    assert_eq!(
        response.status(),
        202,
        "{name}: {:?}",
        response.text().await
    );
    let body = json_of(response).await;
    assert_eq!(body["status"], "processing");
    body["id"].as_str().unwrap().to_owned()
}

/// Waits (up to 4 minutes) until the content is completed or failed; returns it.
async fn settled(app: &TestApp, token: &str, id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(240);
    loop {
        let body = json_of(app.get(&format!("/v1/contents/{id}"), Some(token)).await).await;
        if matches!(body["status"].as_str(), Some("completed" | "failed")) {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "content {id} never settled: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn base_title(title: &str) -> &str {
    title.split(" (").next().unwrap_or(title)
}

#[tokio::test]
async fn documents_in_five_formats_become_searchable_atoms_through_kafka() {
    let (_cluster, app) = spawn_kafka_app().await;
    let _atomizer = app.spawn_service("atomizer").await;
    let (_, _, email) = app.sign_up("Content Org").await;
    let admin = app.token(&email).await;

    let mut ids = Vec::new();
    for name in [
        "guide.md",
        "guide.html",
        "guide.pdf",
        "guide.docx",
        "lecture.srt",
    ] {
        ids.push((
            name,
            uploaded(&app, &admin, name, fixture("good", name)).await,
        ));
    }
    for (name, id) in &ids {
        let content = settled(&app, &admin, id).await;
        assert_eq!(content["status"], "completed", "{name}: {content}");
        assert!(content["atoms_count"].as_i64().unwrap() >= 1, "{name}");
        let atoms = json_of(
            app.get(&format!("/v1/contents/{id}/atoms"), Some(&admin))
                .await,
        )
        .await;
        let atoms = atoms.as_array().unwrap();
        assert_eq!(atoms.len() as i64, content["atoms_count"].as_i64().unwrap());
        for (i, atom) in atoms.iter().enumerate() {
            assert_eq!(atom["sequence"], i + 1, "{name}");
            for field in ["id", "title", "text", "objective"] {
                assert!(
                    !atom[field].as_str().unwrap_or_default().is_empty(),
                    "{name}: {field} of {atom}"
                );
            }
            assert!(
                !atom["concepts"].as_array().unwrap().is_empty(),
                "{name}: concepts"
            );
            assert!(
                (1..=5).contains(&atom["difficulty"].as_i64().unwrap()),
                "{name}"
            );
            assert!(atom["estimated_minutes"].as_i64().unwrap() >= 1, "{name}");
            assert!(atom["prerequisites"].is_array(), "{name}");
            let quality = &atom["quality"];
            for part in [
                "score",
                "self_contained",
                "length_in_range",
                "has_objective",
                "concept_density",
            ] {
                assert!(
                    (0.0..=1.0).contains(&quality[part].as_f64().unwrap()),
                    "{name}: {part}"
                );
            }
        }
        if *name != "lecture.srt" {
            // Headings are hard boundaries: every heading opens an atom, in order, and no atom
            // runs across one.
            let mut titles: Vec<&str> = atoms
                .iter()
                .map(|a| base_title(a["title"].as_str().unwrap()))
                .collect();
            titles.dedup();
            assert_eq!(titles, HEADINGS, "{name}");
        }
    }

    // Search finds an atom by a phrase of its text, with the matched terms marked.
    let hits = json_of(
        app.get(
            "/v1/search?q=%22function%20body%20can%20optionally%20be%20a%20string%22&kind=atom",
            Some(&admin),
        )
        .await,
    )
    .await;
    let first = &hits.as_array().unwrap()[0];
    assert_eq!(first["kind"], "atom");
    // The phrase is in every upload (the SRT has no headings, so its atom is titled after the
    // content): whichever ranks first, its text holds the phrase.
    for hit in &hits.as_array().unwrap()[..1] {
        let content = hit["content_id"].as_str().unwrap();
        let atoms = json_of(
            app.get(&format!("/v1/contents/{content}/atoms"), Some(&admin))
                .await,
        )
        .await;
        let atom = atoms
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == hit["id"])
            .unwrap_or_else(|| panic!("{hit} is an atom of its content"));
        assert!(
            atom["text"]
                .as_str()
                .unwrap()
                .contains("function body can optionally be a string"),
            "{hit}"
        );
    }
    assert!(
        first["highlight"].as_str().unwrap().contains("<mark>"),
        "{first}"
    );
    assert!(first["score"].as_f64().unwrap() > 0.0);

    // The audit stream: the upload, then the atomizer's answer, under one correlation id.
    let (_, md) = &ids[0];
    let audit = json_of(
        app.get(&format!("/v1/audit/streams/content-{md}"), Some(&admin))
            .await,
    )
    .await;
    let events = audit["events"].as_array().unwrap();
    assert_eq!(events[0]["event_type"], "ContentUploaded");
    assert_eq!(events[1]["event_type"], "ContentAtomized");
    assert_eq!(
        events[0]["metadata"]["correlation_id"], events[1]["metadata"]["correlation_id"],
        "one request, one correlation"
    );
    assert_eq!(events[1]["metadata"]["causation_id"], events[0]["event_id"]);

    // Another organization's learner finds nothing: 404 for the content and its atoms, no hits.
    let (_, _, other_email) = app.sign_up("Other Org").await;
    let other_admin = app.token(&other_email).await;
    let (_, learner_email) = app.create_user(&other_admin, &["learner"], None).await;
    let learner = app.token(&learner_email).await;
    assert_problem(
        &app.get(&format!("/v1/contents/{md}"), Some(&learner)).await,
        404,
    );
    assert_problem(
        &app.get(&format!("/v1/contents/{md}/atoms"), Some(&learner))
            .await,
        404,
    );
    let nothing = json_of(
        app.get("/v1/search?q=function%20body", Some(&learner))
            .await,
    )
    .await;
    assert_eq!(nothing, serde_json::json!([]));

    // Archived contents leave search.
    let archived = app
        .post(
            &format!("/v1/contents/{md}/archive"),
            Some(&admin),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(archived.status(), 200);
    let hits = json_of(
        app.get(
            "/v1/search?q=%22function%20body%20can%20optionally%20be%20a%20string%22",
            Some(&admin),
        )
        .await,
    )
    .await;
    assert!(
        hits.as_array()
            .unwrap()
            .iter()
            .all(|h| h["content_id"] != md.as_str() && h["id"] != md.as_str()),
        "{hits}"
    );
}

#[tokio::test]
async fn hostile_files_end_as_a_4xx_or_a_failure_while_the_service_stays_up() {
    let (_cluster, app) = spawn_kafka_app().await;
    let _atomizer = app.spawn_service("atomizer").await;
    let (_, _, email) = app.sign_up("Hostile Org").await;
    let admin = app.token(&email).await;

    let refused = [
        "empty.txt",
        "random.bin",
        "not_a_zip.docx",
        "lies_pdf.pdf",
        "lies_docx.docx",
        "elf.md",
        "invalid_utf8_head.txt",
    ];
    for name in refused {
        let response = upload(&app, &admin, name, fixture("hostile", name)).await;
        assert!(
            response.status().is_client_error(),
            "{name}: {}",
            response.status()
        );
        let status = response.status().as_u16();
        assert_problem(&response, status);
        let body = json_of(response).await;
        assert_eq!(body["errors"][0]["field"], "file", "{name}: {body}");
    }
    let accepted = [
        "invalid_utf8.txt",
        "invalid_utf8.md",
        "broken_timestamps.srt",
        "broken_timestamps.vtt",
        "truncated.pdf",
        "deeply_nested.pdf",
        "pages_cycle.pdf",
        "inflate_bomb.pdf",
        "huge_xref_w.pdf",
        "zip_bomb.docx",
        "zip_bomb_lying_size.docx",
        "fake_zip_header.docx",
        "docx_nested.docx",
        "nested_100k.html",
        "nested_lists.md",
        "deep_pages_tree.pdf",
    ];
    let mut ids = Vec::new();
    for name in accepted {
        ids.push((
            name,
            uploaded(&app, &admin, name, fixture("hostile", name)).await,
        ));
    }
    // A good document queued behind them.
    let good = uploaded(&app, &admin, "guide.md", fixture("good", "guide.md")).await;
    let health = app.get("/healthz", None).await;
    assert_eq!(
        health.status(),
        200,
        "healthy while hostile files are parsed"
    );
    let good = settled(&app, &admin, &good).await;
    assert_eq!(good["status"], "completed", "{good}");
    for (name, id) in ids {
        let content = settled(&app, &admin, &id).await;
        match content["status"].as_str() {
            Some("failed") => {
                let reason = content["error"].as_str().unwrap_or_default();
                assert!(!reason.is_empty(), "{name}: a failure without a reason");
            }
            // Careful parsers read a few of these correctly (hostile/README.md): then the
            // atoms hold only the small real text, never the attack's bulk.
            Some("completed") => {
                assert!(
                    [
                        "docx_nested.docx",
                        "nested_lists.md",
                        "deep_pages_tree.pdf",
                        "truncated.pdf",
                        "deeply_nested.pdf",
                        "pages_cycle.pdf",
                        "huge_xref_w.pdf",
                        "nested_100k.html"
                    ]
                    .contains(&name),
                    "{name} must not be atomized: {content}"
                );
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    assert_eq!(app.get("/healthz", None).await.status(), 200);
}

#[tokio::test]
async fn a_killed_atomizer_answers_every_content_once_after_a_restart() {
    let (_cluster, app) = spawn_kafka_app().await;
    let atomizer = app.spawn_service("atomizer").await;
    let (_, _, email) = app.sign_up("Restart Org").await;
    let admin = app.token(&email).await;
    let mut ids = Vec::new();
    for name in ["guide.pdf", "guide.docx", "guide.md", "guide.html"] {
        ids.push(uploaded(&app, &admin, name, fixture("good", name)).await);
    }
    // Mid-document: the first file is being extracted or atomized.
    tokio::time::sleep(Duration::from_millis(300)).await;
    atomizer.kill();
    let _restarted = app.spawn_service("atomizer").await;
    for id in &ids {
        let content = settled(&app, &admin, id).await;
        assert_eq!(content["status"], "completed", "{content}");
        let audit = json_of(
            app.get(&format!("/v1/audit/streams/content-{id}"), Some(&admin))
                .await,
        )
        .await;
        let answers = audit["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| {
                matches!(
                    e["event_type"].as_str(),
                    Some("ContentAtomized" | "AtomizationFailed")
                )
            })
            .count();
        let parts = audit["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["event_type"] == "ContentAtomized")
            .map_or(1, |e| e["payload"]["parts"].as_u64().unwrap() as usize);
        assert_eq!(answers, parts, "content {id} was answered once: {audit}");
    }
}

#[tokio::test]
async fn uploads_are_checked_before_anything_is_recorded() {
    let (_cluster, app) = spawn_kafka_app().await;
    let (_, _, email) = app.sign_up("Checks Org").await;
    let admin = app.token(&email).await;
    let (_, learner_email) = app.create_user(&admin, &["learner"], None).await;
    let learner = app.token(&learner_email).await;

    let response = upload(&app, &learner, "guide.md", fixture("good", "guide.md")).await;
    assert_problem(&response, 403);

    let no_title = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(fixture("good", "guide.md")).file_name("guide.md"),
    );
    let response = app
        .client
        .post(app.url("/v1/contents"))
        .bearer_auth(&admin)
        .multipart(no_title)
        .send()
        .await
        .unwrap();
    assert_problem(&response, 422);
    assert_eq!(json_of(response).await["errors"][0]["field"], "title");

    let bad_language = reqwest::multipart::Form::new()
        .text("title", "T")
        .text("metadata", r#"{"language": "not a tag!"}"#)
        .part(
            "file",
            reqwest::multipart::Part::bytes(fixture("good", "guide.md")).file_name("guide.md"),
        );
    let response = app
        .client
        .post(app.url("/v1/contents"))
        .bearer_auth(&admin)
        .multipart(bad_language)
        .send()
        .await
        .unwrap();
    assert_problem(&response, 422);
    assert_eq!(
        json_of(response).await["errors"][0]["field"],
        "metadata.language"
    );

    let response = app
        .post(
            "/v1/contents",
            Some(&admin),
            serde_json::json!({"title": "json"}),
        )
        .await;
    assert_problem(&response, 400);

    let unknown = uuid::Uuid::now_v7();
    assert_problem(
        &app.get(&format!("/v1/contents/{unknown}"), Some(&admin))
            .await,
        404,
    );
    let listed = json_of(app.get("/v1/contents", Some(&admin)).await).await;
    assert_eq!(listed, serde_json::json!([]), "nothing was recorded");

    // The list's `q` matches part of a title, and wildcards in it match literally.
    uploaded(&app, &admin, "guide.md", fixture("good", "guide.md")).await;
    let count = |path: &'static str| {
        let (app, admin) = (&app, &admin);
        async move {
            json_of(app.get(path, Some(admin)).await)
                .await
                .as_array()
                .unwrap()
                .len()
        }
    };
    assert_eq!(count("/v1/contents?q=uide%20fr").await, 1);
    assert_eq!(count("/v1/contents?q=%25").await, 0);
    assert_eq!(count("/v1/contents?q=G_ide").await, 0);
}
