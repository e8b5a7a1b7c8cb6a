-- cohort_pools: pools with their queue size, and every ticket (queued, left or placed).
CREATE TABLE pools (
    pool_id         uuid        PRIMARY KEY,
    organization_id uuid        NOT NULL,
    name            text        NOT NULL,
    group_size      jsonb       NOT NULL,
    criteria        jsonb       NOT NULL,
    batch           jsonb       NOT NULL,
    closed          boolean     NOT NULL DEFAULT false,
    queue_size      integer     NOT NULL DEFAULT 0,
    groups_formed   integer     NOT NULL DEFAULT 0,
    created_by      uuid        NOT NULL,
    version         bigint      NOT NULL,
    created_at      timestamptz NOT NULL
);
CREATE INDEX pools_org_idx ON pools (organization_id, created_at DESC);

CREATE TABLE tickets (
    ticket_id       uuid        PRIMARY KEY,
    pool_id         uuid        NOT NULL,
    organization_id uuid        NOT NULL,
    learner_id      uuid        NOT NULL,
    -- queued | left | placed
    status          text        NOT NULL,
    joined_at       timestamptz NOT NULL,
    -- Why the last batch left it queued.
    unplaced_reason text
);
CREATE INDEX tickets_pool_idx ON tickets (pool_id, status);
CREATE INDEX tickets_learner_idx ON tickets (learner_id, pool_id);

-- Groups as batches formed them (members as learner ids, in ticket order).
CREATE TABLE groups (
    group_id        uuid        PRIMARY KEY,
    pool_id         uuid        NOT NULL,
    organization_id uuid        NOT NULL,
    members         uuid[]      NOT NULL,
    formed_at       timestamptz NOT NULL,
    -- Whether the curriculum is generated (it may have no steps).
    curriculum_ready boolean    NOT NULL DEFAULT false,
    -- The group's stream version (commands on the group wait for it).
    version         bigint      NOT NULL DEFAULT 0
);
CREATE INDEX groups_pool_idx ON groups (pool_id, formed_at);
CREATE INDEX groups_members_idx ON groups USING gin (members);

-- Each group's curriculum (steps in order) and the steps each member has done.
CREATE TABLE group_steps (
    group_id   uuid     NOT NULL,
    step_id    uuid     NOT NULL,
    position   integer  NOT NULL,
    title      text     NOT NULL,
    kind       text     NOT NULL,
    ref_id     uuid     NOT NULL,
    skill_id   uuid,
    minutes    integer  NOT NULL,
    skipped_by uuid[]   NOT NULL,
    PRIMARY KEY (group_id, step_id)
);
CREATE TABLE steps_done (
    group_id   uuid NOT NULL,
    step_id    uuid NOT NULL,
    learner_id uuid NOT NULL,
    PRIMARY KEY (group_id, step_id, learner_id)
);

-- Each group's workspace: projects and their tasks (as they now stand).
CREATE TABLE projects (
    project_id  uuid        PRIMARY KEY,
    group_id    uuid        NOT NULL,
    title       text        NOT NULL,
    created_by  uuid        NOT NULL,
    created_at  timestamptz NOT NULL
);
CREATE INDEX projects_group_idx ON projects (group_id, created_at);
CREATE TABLE tasks (
    task_id     uuid        PRIMARY KEY,
    group_id    uuid        NOT NULL,
    project_id  uuid        NOT NULL,
    title       text        NOT NULL,
    assignee    uuid,
    -- todo | doing | done
    state       text        NOT NULL,
    due         date,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX tasks_project_idx ON tasks (project_id, created_at);

-- Each pool's webhooks (the `cohort_webhooks` stream; its version per pool) without their
-- secrets, which no event carries.
CREATE TABLE webhook_sets (
    pool_id     uuid        PRIMARY KEY,
    version     bigint      NOT NULL
);
CREATE TABLE webhooks (
    webhook_id    uuid        PRIMARY KEY,
    pool_id       uuid        NOT NULL,
    organization_id uuid      NOT NULL,
    url           text        NOT NULL,
    registered_by uuid        NOT NULL,
    registered_at timestamptz NOT NULL,
    removed_at    timestamptz
);
CREATE INDEX webhooks_pool_idx ON webhooks (pool_id, registered_at);
