-- Records the relay could not publish because the broker refused them for good (too large
-- for `message.max.bytes`, an invalid record, a topic it may not write to). The relay parks
-- each one here, moves its checkpoint past it and goes on with the rest of `$all`, so one
-- event cannot stop publication for every organization (ADR 0004, "Parking").
--
-- An operator retries a parked record (`trellis relay retry`, `POST /v1/ops/parked/{id}/retry`)
-- by setting `retry_requested_at`; the relay republishes it out of its original order and sets
-- `retried_at`, or, if the broker refuses it again, records the new error and clears the
-- request.
CREATE TABLE relay_parked (
    relay              text        NOT NULL,  -- the relay's checkpoint name
    event_id           uuid        NOT NULL,
    global_position    bigint      NOT NULL,
    stream_id          text        NOT NULL,
    stream_version     bigint      NOT NULL,
    event_type         text        NOT NULL,
    tenant_id          uuid,                  -- the event's organization, for scoped views
    topic              text        NOT NULL,
    error              text        NOT NULL,
    attempts           integer     NOT NULL DEFAULT 1,
    parked_at          timestamptz NOT NULL DEFAULT now(),
    retry_requested_at timestamptz,
    retried_at         timestamptz,
    PRIMARY KEY (relay, event_id)
);

-- The relay's "anything to retry?" poll.
CREATE INDEX relay_parked_retry_idx ON relay_parked (relay, global_position)
    WHERE retry_requested_at IS NOT NULL;
CREATE INDEX relay_parked_tenant_idx ON relay_parked (tenant_id, global_position);
