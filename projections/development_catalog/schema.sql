-- development_catalog: the skill catalog per organization, for search and validation.
-- Trigram indexes answer substring search (GET /v1/skills?q=); the extension is trusted
-- (PostgreSQL 13+), database-wide, and lives in `public`, outside this disposable schema; two
-- processes building at once may race to create it, and the loser finds it there.
DO $$ BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;
EXCEPTION WHEN unique_violation THEN NULL;
END $$;

CREATE TABLE skills (
    skill_id        uuid        PRIMARY KEY,
    organization_id uuid        NOT NULL,
    name            text        NOT NULL,
    description     text        NOT NULL,
    aliases         text[]      NOT NULL,
    esco_uri        text,
    -- The aliases one per line (array_to_string is not immutable: the projection joins them).
    aliases_text    text        NOT NULL,
    -- The event's global position: meaning search embeds new skills in this order.
    position        bigint      NOT NULL,
    version         bigint      NOT NULL,
    created_at      timestamptz NOT NULL,
    -- The name as full-text terms: the content atomizer links concepts to skills by it.
    name_search     tsvector    GENERATED ALWAYS AS (to_tsvector('english', name)) STORED,
    -- Lower-cased name and aliases in byte order: prefix ranges and substring matches.
    name_key        text COLLATE "C" GENERATED ALWAYS AS (lower(name)) STORED,
    alias_key       text COLLATE "C" GENERATED ALWAYS AS (lower(aliases_text)) STORED,
    -- Full text for GET /v1/search?kind=skill: name over aliases over description.
    search          tsvector    GENERATED ALWAYS AS (
                        setweight(to_tsvector('english', name), 'A')
                        || setweight(to_tsvector('english', aliases_text), 'B')
                        || setweight(to_tsvector('english', description), 'C')) STORED
);
CREATE INDEX skills_org_name_key_idx ON skills (organization_id, name_key);
CREATE INDEX skills_org_position_idx ON skills (organization_id, position);
CREATE INDEX skills_name_search_idx ON skills USING gin (name_search);
CREATE INDEX skills_name_trgm_idx ON skills USING gin (name_key gin_trgm_ops);
CREATE INDEX skills_alias_trgm_idx ON skills USING gin (alias_key gin_trgm_ops);
CREATE INDEX skills_search_idx ON skills USING gin (search);

CREATE TABLE resources (
    resource_id      uuid        PRIMARY KEY,
    organization_id  uuid        NOT NULL,
    title            text        NOT NULL,
    description      text        NOT NULL,
    url              text,
    kind             text        NOT NULL,
    duration_minutes integer     NOT NULL,
    difficulty       smallint    NOT NULL,
    -- [{skill_id, level}] as published.
    skills           jsonb       NOT NULL,
    rating_sum       integer     NOT NULL DEFAULT 0,
    rating_count     integer     NOT NULL DEFAULT 0,
    position         bigint      NOT NULL,
    version          bigint      NOT NULL,
    created_at       timestamptz NOT NULL,
    -- Full text for GET /v1/search?kind=resource: title over description.
    search           tsvector    GENERATED ALWAYS AS (
                         setweight(to_tsvector('english', title), 'A')
                         || setweight(to_tsvector('english', description), 'B')) STORED
);
CREATE INDEX resources_org_idx ON resources (organization_id, position);
CREATE INDEX resources_search_idx ON resources USING gin (search);

-- Latest rating per user, so a changed rating replaces the old one in the sums.
CREATE TABLE resource_ratings (
    resource_id uuid     NOT NULL,
    user_id     uuid     NOT NULL,
    rating      smallint NOT NULL,
    PRIMARY KEY (resource_id, user_id)
);
