-- The cohorts context's webhook delivery state (docs/cohorts.md, ADR 0015). Not a read
-- model: no rebuild recreates it, because a rebuild must not send anything again. Webhook
-- secrets are kept here and never in an event (every Kafka copy would hold them).
CREATE TABLE IF NOT EXISTS cohort_webhook_secrets (
    webhook_id      uuid        PRIMARY KEY,
    pool_id         uuid        NOT NULL,
    secret          text        NOT NULL,
    -- Set when the dispatcher handles the removal: nothing more is sent.
    removed_at      timestamptz
);
CREATE INDEX IF NOT EXISTS cohort_webhook_secrets_pool
    ON cohort_webhook_secrets (pool_id) WHERE removed_at IS NULL;

-- One row per (webhook, event): the exact body signed and sent on every attempt.
CREATE TABLE IF NOT EXISTS cohort_webhook_deliveries (
    webhook_id      uuid        NOT NULL,
    event_id        uuid        NOT NULL,
    organization_id uuid        NOT NULL,
    url             text        NOT NULL,
    event_type      text        NOT NULL,
    global_position bigint      NOT NULL,
    body            bytea       NOT NULL,
    -- pending | delivered | failed | cancelled
    state           text        NOT NULL DEFAULT 'pending',
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (webhook_id, event_id)
);
CREATE INDEX IF NOT EXISTS cohort_webhook_deliveries_due
    ON cohort_webhook_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS cohort_webhook_deliveries_log
    ON cohort_webhook_deliveries (webhook_id, global_position DESC);

-- Every attempt: the delivery log instructors read.
CREATE TABLE IF NOT EXISTS cohort_webhook_attempts (
    webhook_id  uuid        NOT NULL,
    event_id    uuid        NOT NULL,
    attempt     integer     NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    status      integer,
    error       text,
    duration_ms integer     NOT NULL,
    PRIMARY KEY (webhook_id, event_id, attempt)
);
