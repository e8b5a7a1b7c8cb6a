//! The operator's view of the relay's parked records: `GET /v1/ops/parked`,
//! `POST /v1/ops/parked/{event_id}/retry` and the `/metrics` gauge (ADR 0004, "Parking").
//! The relay side (parking, republishing) is in `bus_faults.rs`.

use serde_json::json;
use trellis_store_postgres::parked::{self, NewParked};
use trellis_tests::*;

async fn park(app: &TestApp, position: i64, tenant: Option<uuid::Uuid>) -> uuid::Uuid {
    let event_id = uuid::Uuid::now_v7();
    let stream = format!("skill-{}", uuid::Uuid::now_v7());
    parked::park(
        app.store.pool(),
        &NewParked {
            relay: "relay",
            event_id,
            global_position: position,
            stream_id: &stream,
            stream_version: 1,
            event_type: "SkillDefined",
            tenant_id: tenant,
            topic: "trellis.development",
            error: "Message production error: MessageSizeTooLarge (Broker: Message size too large)",
        },
    )
    .await
    .unwrap();
    event_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_lists_parked_records_and_requests_retries_and_no_tenant_can() {
    let app = spawn_app().await;
    let (organization, _, admin_email) = app.sign_up("Ops parked").await;
    let admin = app.token(&admin_email).await;
    let first = park(&app, 7, Some(organization.parse().unwrap())).await;
    let second = park(&app, 9, None).await;

    // Deployment-wide data: no tenant role opens it, not even an organization's admin.
    for token in [Some(admin.as_str()), None] {
        assert_eq!(app.get("/v1/ops/parked", token).await.status(), 401);
        let retry = app
            .post(&format!("/v1/ops/parked/{first}/retry"), token, json!({}))
            .await;
        assert_eq!(retry.status(), 401);
    }

    let listed = json_of(app.get("/v1/ops/parked", Some(OPS_TOKEN)).await).await;
    let records = listed["records"].as_array().unwrap();
    assert_eq!(records.len(), 2, "{listed}");
    assert_eq!(records[0]["event_id"], first.to_string(), "in $all order");
    assert_eq!(records[0]["global_position"], 7);
    assert_eq!(records[0]["topic"], "trellis.development");
    assert_eq!(records[0]["state"], "parked");
    assert!(
        records[0]["error"]
            .as_str()
            .unwrap()
            .contains("MessageSizeTooLarge")
    );
    assert_eq!(listed["counts"]["parked"], 2);

    let retry = app
        .post(
            &format!("/v1/ops/parked/{second}/retry"),
            Some(OPS_TOKEN),
            json!({}),
        )
        .await;
    assert_eq!(retry.status(), 202);
    assert_eq!(json_of(retry).await["state"], "retry_requested");
    let listed = json_of(app.get("/v1/ops/parked", Some(OPS_TOKEN)).await).await;
    assert_eq!(listed["records"][1]["state"], "retry_requested");
    assert_eq!(
        listed["counts"],
        json!({"parked": 1, "retry_requested": 1, "republished": 0})
    );

    for unknown in [uuid::Uuid::now_v7().to_string(), "not-a-uuid".to_owned()] {
        let retry = app
            .post(
                &format!("/v1/ops/parked/{unknown}/retry"),
                Some(OPS_TOKEN),
                json!({}),
            )
            .await;
        assert_eq!(retry.status(), 404);
    }
    let bad_limit = app.get("/v1/ops/parked?limit=0", Some(OPS_TOKEN)).await;
    assert_eq!(bad_limit.status(), 422);
    assert_eq!(json_of(bad_limit).await["errors"][0]["field"], "limit");
    let one = json_of(app.get("/v1/ops/parked?limit=1", Some(OPS_TOKEN)).await).await;
    assert_eq!(one["records"].as_array().unwrap().len(), 1);

    // The gauge operators alert on.
    let metrics = app
        .get("/metrics", Some(OPS_TOKEN))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("trellis_relay_parked_records{state=\"parked\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("trellis_relay_parked_records{state=\"retry_requested\"} 1"));

    let doc = json_of(app.get("/v1/openapi.json", None).await).await;
    for path in ["/v1/ops/parked", "/v1/ops/parked/{event_id}/retry"] {
        assert!(doc["paths"][path].is_object(), "{path} is missing");
    }
}
