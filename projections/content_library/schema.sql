-- content_library v2: uploaded contents and their learning atoms, as the API lists, reads
-- and searches them (GET /v1/contents…, GET /v1/search). Atoms of the current answer only;
-- a new version or re-atomization replaces them when its answer arrives.
CREATE TABLE contents (
    content_id        uuid        PRIMARY KEY,
    organization_id   uuid        NOT NULL,
    title             text        NOT NULL,
    -- processing | completed | failed
    status            text        NOT NULL,
    content_version   integer     NOT NULL,
    media_type        text        NOT NULL,
    filename          text,
    size_bytes        bigint      NOT NULL,
    sha256            text        NOT NULL,
    object_key        text        NOT NULL,
    metadata          jsonb       NOT NULL,
    uploaded_by       uuid        NOT NULL,
    atomizer_version  integer,
    atoms_count       integer     NOT NULL DEFAULT 0,
    error             text,
    archived          boolean     NOT NULL DEFAULT false,
    -- The upload's global position: contents uploaded earlier may be prerequisites.
    position          bigint      NOT NULL,
    version           bigint      NOT NULL,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    search            tsvector    GENERATED ALWAYS AS (
        setweight(to_tsvector('english', title), 'A')
        || setweight(to_tsvector('english', coalesce(metadata->>'subject', '')), 'B')
        || setweight(to_tsvector('english', coalesce(metadata->>'tags', '')), 'B')
    ) STORED
);
CREATE INDEX contents_org_idx ON contents (organization_id, created_at DESC);
CREATE INDEX contents_search_idx ON contents USING gin (search);

CREATE TABLE atoms (
    atom_id           uuid        PRIMARY KEY,
    content_id        uuid        NOT NULL,
    organization_id   uuid        NOT NULL,
    content_version   integer     NOT NULL,
    sequence          integer     NOT NULL,
    title             text        NOT NULL,
    body              text        NOT NULL,
    objective         text        NOT NULL,
    -- [{phrase, skill_ids}]
    concepts          jsonb       NOT NULL,
    -- the phrases alone, for prerequisite lookups
    concept_phrases   text[]      NOT NULL,
    difficulty        smallint    NOT NULL,
    estimated_minutes integer     NOT NULL,
    prerequisites     uuid[]      NOT NULL,
    -- {score, self_contained, length_in_range, has_objective, concept_density}
    quality           jsonb       NOT NULL,
    -- 384 signed bytes (component × 127), or null
    vector            bytea,
    -- global position of the event that carried it (the search index follows it)
    position          bigint      NOT NULL,
    -- its content's, copied so that search filters without a join
    archived          boolean     NOT NULL DEFAULT false,
    search            tsvector    GENERATED ALWAYS AS (
        setweight(to_tsvector('english', title), 'A') || setweight(to_tsvector('english', body), 'B')
    ) STORED
);
CREATE INDEX atoms_content_idx ON atoms (content_id, sequence);
CREATE INDEX atoms_search_idx ON atoms USING gin (search);
CREATE INDEX atoms_org_position_idx ON atoms (organization_id, position);
CREATE INDEX atoms_concepts_idx ON atoms USING gin (concept_phrases);

-- Every stored file any version of a content references (history is kept): the sweep of
-- object storage deletes only what is not here.
CREATE TABLE files (
    object_key      text    NOT NULL,
    content_id      uuid    NOT NULL,
    content_version integer NOT NULL,
    PRIMARY KEY (object_key, content_id, content_version)
);
