-- Personal data in events (ADR 0017): one data key per data subject (a user), wrapped by the
-- master key (`TRELLIS_MASTER_KEY`, never stored). Erasure destroys the key: `wrapped` becomes
-- NULL and `forgotten_at` is set, and the tombstone keeps a new key from ever being made for
-- the subject, so every copy of their ciphertext (events, Kafka, dead letters, backups of the
-- log) stays unreadable. This table is the single point of erasure: keep its backups short.
CREATE TABLE IF NOT EXISTS subject_keys (
    subject_id   uuid        PRIMARY KEY,
    tenant_id    uuid,
    wrapped      bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    forgotten_at timestamptz,
    CHECK ((wrapped IS NULL) = (forgotten_at IS NOT NULL))
);

-- The one exception to immutability (ADR 0017): `trellis privacy encrypt-history` encrypts the
-- personal fields of events appended before encryption in place and re-links their chains.
-- Each re-linked chain is recorded here with its head before and after, so an export taken
-- before still verifies against the recorded old head and the change is on record.
CREATE TABLE IF NOT EXISTS event_chain_reseals (
    chain_id         uuid        NOT NULL,
    seq              bigint      NOT NULL,
    old_head         bytea       NOT NULL,
    new_head         bytea       NOT NULL,
    events_rewritten bigint      NOT NULL,
    reason           text        NOT NULL,
    at               timestamptz NOT NULL DEFAULT now()
);
