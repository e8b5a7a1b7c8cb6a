-- development_plans v1: performance reviews and individual development plans, as the API
-- reads them (GET /v1/idps/{id}, authorization by employee and manager).
CREATE TABLE reviews (
    review_id       uuid        PRIMARY KEY,
    organization_id uuid        NOT NULL,
    employee_id     uuid        NOT NULL,
    reviewer_id     uuid        NOT NULL,
    period          text        NOT NULL,
    -- [{skill_id, level}]
    ratings         jsonb       NOT NULL,
    feedback        text        NOT NULL,
    version         bigint      NOT NULL,
    created_at      timestamptz NOT NULL
);
CREATE INDEX reviews_employee_idx ON reviews (employee_id, created_at DESC);

CREATE TABLE idps (
    idp_id          uuid        PRIMARY KEY,
    organization_id uuid        NOT NULL,
    employee_id     uuid        NOT NULL,
    created_by      uuid        NOT NULL,
    title           text        NOT NULL,
    -- processing | active | failed
    status          text        NOT NULL,
    target_skills   jsonb       NOT NULL,
    target_role     text,
    due_date        date,
    -- [{skill_id, current, target}] and [{resource_id, score, skill_ids, reason}] from the
    -- recommender's answer.
    gaps            jsonb       NOT NULL DEFAULT '[]',
    recommendations jsonb       NOT NULL DEFAULT '[]',
    failure_reason  text,
    approved_by     uuid,
    approved_at     timestamptz,
    items_total     integer     NOT NULL DEFAULT 0,
    items_done      integer     NOT NULL DEFAULT 0,
    version         bigint      NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX idps_employee_idx ON idps (employee_id, created_at DESC);

CREATE TABLE idp_items (
    idp_id       uuid        NOT NULL,
    item_id      uuid        NOT NULL,
    position     integer     NOT NULL,
    title        text        NOT NULL,
    resource_id  uuid,
    skill_ids    jsonb       NOT NULL,
    completed_at timestamptz,
    PRIMARY KEY (idp_id, item_id)
);
