-- Replays for audits requested over HTTP, owned by the API that runs them (`POST /v1/audit/replays`, docs/auditing.md): the
-- chosen projections rebuilt as of `until` for one organization into `schema`.
CREATE TABLE IF NOT EXISTS audit_replays (
    replay_id       uuid        PRIMARY KEY,
    organization_id uuid        NOT NULL,
    requested_by    uuid        NOT NULL,
    until           text        NOT NULL,
    projections     text[]      NOT NULL,
    schema_name     text        NOT NULL,
    -- running | completed | failed
    status          text        NOT NULL DEFAULT 'running',
    events_read     bigint      NOT NULL DEFAULT 0,
    events_applied  bigint      NOT NULL DEFAULT 0,
    position        bigint      NOT NULL DEFAULT 0,
    end_position    bigint      NOT NULL DEFAULT 0,
    error           text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz
);
