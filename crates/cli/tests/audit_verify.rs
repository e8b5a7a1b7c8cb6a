//! `trellis audit verify`, the command an auditor runs (docs/auditing.md): exit status 0 and
//! "ok" on an untouched log, exit status 1 naming the position of a payload changed directly
//! in SQL, for the whole log and for the organization's chain alone.

use std::process::{Command, Output};

use trellis_kernel::{
    AppendOptions, EventStore, ExpectedVersion, Metadata, NewEvent, StreamId, TenantId,
};
use trellis_store_postgres::{PgEventStore, PgStoreOptions};

fn trellis(url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trellis"))
        .args(args)
        .env("DATABASE_URL", url)
        .env("TRELLIS_LOG", "warn")
        .output()
        .expect("the trellis binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn verify_exits_zero_on_a_sealed_log_and_one_at_the_position_changed_in_sql() {
    let url = trellis_testkit::pg::fresh_database().await;
    // `audit seal` migrates the database it is pointed at.
    let sealed = trellis(&url, &["audit", "seal"]);
    assert!(sealed.status.success(), "{sealed:?}");

    let store = PgEventStore::connect(&url, PgStoreOptions::default())
        .await
        .expect("connect");
    let organization = TenantId::new();
    let metadata = Metadata {
        tenant_id: Some(organization),
        ..Metadata::default()
    };
    let stream = StreamId::new("tally", uuid::Uuid::now_v7()).expect("stream");
    let events = (1..=5)
        .map(|n| {
            NewEvent::new(
                "TallyOpened",
                1,
                serde_json::json!({ "name": format!("t{n}") }),
                metadata.clone(),
            )
            .expect("event")
        })
        .collect();
    store
        .append(
            &stream,
            ExpectedVersion::NoStream,
            events,
            AppendOptions::default(),
        )
        .await
        .expect("append");
    // Sealing stops below the oldest transaction running on the server (another test's
    // `CREATE DATABASE` can hold it back for a moment): seal until all five are.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut total = 0;
    while total < 5 {
        assert!(
            std::time::Instant::now() < deadline,
            "{total} of 5 events sealed in 30 s"
        );
        let sealed = trellis(&url, &["audit", "seal"]);
        assert!(sealed.status.success(), "{sealed:?}");
        let out = stdout(&sealed);
        total += out
            .trim()
            .strip_prefix("sealed ")
            .and_then(|rest| rest.strip_suffix(" events"))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("unexpected output: {out}"));
        if total < 5 {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    let org = organization.to_string();
    for args in [
        vec!["audit", "verify"],
        vec!["audit", "verify", "--organization", &org],
    ] {
        let verified = trellis(&url, &args);
        assert!(verified.status.success(), "{args:?}: {verified:?}");
        assert!(
            stdout(&verified).contains(": ok, 5 events"),
            "{}",
            stdout(&verified)
        );
    }

    let third: i64 = sqlx::query_scalar(
        "SELECT global_position FROM events WHERE stream_id = $1 AND stream_version = 3",
    )
    .bind(stream.to_string())
    .fetch_one(store.pool())
    .await
    .expect("third event");
    let seal: i64 = sqlx::query_scalar("SELECT seq FROM event_chain WHERE global_position = $1")
        .bind(third)
        .fetch_one(store.pool())
        .await
        .expect("the third event's seal");
    sqlx::query(
        "UPDATE events SET payload = jsonb_set(payload, '{name}', '\"t9\"') \
         WHERE global_position = $1",
    )
    .bind(third)
    .execute(store.pool())
    .await
    .expect("tamper");

    for args in [
        vec!["audit", "verify"],
        vec!["audit", "verify", "--organization", &org],
    ] {
        let verified = trellis(&url, &args);
        assert_eq!(verified.status.code(), Some(1), "{args:?}: {verified:?}");
        let out = stdout(&verified);
        assert!(
            out.contains(&format!("BROKEN at seal {seal} (position {third})")),
            "{args:?}: {out}"
        );
        assert!(
            String::from_utf8_lossy(&verified.stderr).contains("1 chain(s) broken"),
            "{verified:?}"
        );
    }
}
