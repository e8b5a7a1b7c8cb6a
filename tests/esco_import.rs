//! The real ESCO data imports into PostgreSQL, idempotently, with schema-valid events.

use std::sync::Arc;

use trellis_kernel::{AllFilter, CommandHandler, EventStore, Metadata, TenantId, Upcasters};
use trellis_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn importing_esco_twice_defines_every_skill_once() {
    let store = fresh_pg_store(8).await;
    let commands = CommandHandler::new(schema_checked(&store), Arc::new(Upcasters::new()));
    let data = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../data/esco/skills.jsonl"
    ))
    .unwrap();
    let organization = uuid::Uuid::now_v7();
    let first = trellis_development_app::import_esco_skills(
        &commands,
        organization,
        &Metadata::default(),
        &data,
    )
    .await
    .unwrap();
    assert_eq!((first.imported, first.skipped), (1277, 0));
    let again = trellis_development_app::import_esco_skills(
        &commands,
        organization,
        &Metadata::default(),
        &data,
    )
    .await
    .unwrap();
    assert_eq!((again.imported, again.skipped), (0, 1277));
    let filter = AllFilter {
        tenant_id: Some(TenantId::from_uuid(organization)),
        event_type: Some("SkillDefined".into()),
    };
    let mut events = Vec::new();
    while events.len() < 1277 {
        let after = events
            .last()
            .map(|e: &trellis_kernel::RecordedEvent| e.global_position);
        let page = store.read_all_filtered(after, 1000, &filter).await.unwrap();
        assert!(!page.is_empty(), "only {} skills visible", events.len());
        events.extend(page);
    }
    assert_eq!(events.len(), 1277);
    // Another organization gets its own copy, under its own ids.
    let other = trellis_development_app::import_esco_skills(
        &commands,
        uuid::Uuid::now_v7(),
        &Metadata::default(),
        &data,
    )
    .await
    .unwrap();
    assert_eq!(other.imported, 1277);
}
