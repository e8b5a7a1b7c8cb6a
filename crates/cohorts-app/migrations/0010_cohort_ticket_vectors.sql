-- The matcher's skill and goal vectors of queued tickets (docs/cohorts.md, "Scoring with
-- vectors"). Not a read model: computed once per ticket from its join with the embedding
-- model, so a batch reads them instead of embedding every learner again. Rows go when the
-- ticket is placed or leaves the queue: they derive from personal data (the goals text).
CREATE TABLE IF NOT EXISTS cohort_ticket_vectors (
    ticket_id       uuid        PRIMARY KEY,
    pool_id         uuid        NOT NULL,
    organization_id uuid        NOT NULL,
    -- Unit vectors as signed bytes (component × 127), 384 each for MiniLM.
    skills          bytea       NOT NULL,
    goals           bytea       NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS cohort_ticket_vectors_pool ON cohort_ticket_vectors (pool_id);
