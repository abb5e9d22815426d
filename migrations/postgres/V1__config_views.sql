-- Config views folded from AXONGATE_CONFIG, the audit view, and projection bookkeeping.
-- Every table here is derived from the streams and can be rebuilt by replay.

-- The last stream sequence each projection applied, written in the same transaction as the
-- change it reflects, so a crash neither loses nor doubles a change.
CREATE TABLE projection_offsets (
    projection    TEXT PRIMARY KEY,
    stream        TEXT NOT NULL,
    last_sequence BIGINT NOT NULL DEFAULT 0,
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Current state of every config entity: the full state from its latest `*.put` event.
-- `subject_sequence` is the stream sequence of that event: the version an update must name
-- (JetStream's expected-last-subject-sequence).
CREATE TABLE config_entities (
    entity           TEXT NOT NULL,
    id               TEXT NOT NULL,
    data             JSONB NOT NULL,
    subject_sequence BIGINT NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    updated_by       TEXT,
    PRIMARY KEY (entity, id)
);
CREATE UNIQUE INDEX config_model_alias ON config_entities ((data->>'alias')) WHERE entity = 'model';
CREATE UNIQUE INDEX config_token_hash ON config_entities ((data->>'hash')) WHERE entity = 'token';
CREATE UNIQUE INDEX config_username ON config_entities ((data->>'username')) WHERE entity = 'user';
CREATE INDEX config_key_provider ON config_entities ((data->>'provider_id')) WHERE entity = 'provider_key';
CREATE INDEX config_token_owner ON config_entities ((data->>'owner_user_id')) WHERE entity = 'token';

-- Event ids already folded into the config views. The stream de-duplicates a retried publish
-- within its window; this catches the same event published again after it, so an old state
-- can never be re-applied over a newer one.
CREATE TABLE applied_config_events (
    event_id UUID PRIMARY KEY,
    sequence BIGINT NOT NULL
);

-- Who changed what, when, with a before/after diff (secret fields redacted), plus logins,
-- token reveals and replays from AXONGATE_AUDIT.
CREATE TABLE audit_log (
    stream      TEXT NOT NULL,
    sequence    BIGINT NOT NULL,
    event_id    UUID NOT NULL UNIQUE,
    occurred_at TIMESTAMPTZ NOT NULL,
    event_type  TEXT NOT NULL,
    actor_id    TEXT,
    actor_name  TEXT,
    entity      TEXT,
    entity_id   TEXT,
    before      JSONB,
    after       JSONB,
    PRIMARY KEY (stream, sequence)
);
CREATE INDEX audit_log_time ON audit_log (occurred_at DESC);
CREATE INDEX audit_log_entity ON audit_log (entity, entity_id);

-- Events a projection could not understand (poison): kept with the reason, counted, skipped.
CREATE TABLE dead_letters (
    stream     TEXT NOT NULL,
    sequence   BIGINT NOT NULL,
    reason     TEXT NOT NULL,
    payload    BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (stream, sequence)
);
