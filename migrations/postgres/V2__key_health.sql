-- Health of each provider key, folded from `provider_key.tested` audit events (the admin
-- "test" action) and, later, from request attempts.
CREATE TABLE provider_key_health (
    provider_key_id TEXT PRIMARY KEY,
    provider_id     TEXT NOT NULL,
    last_success_at TIMESTAMPTZ,
    last_error_at   TIMESTAMPTZ,
    last_error      TEXT,
    last_status     INTEGER,
    last_latency_ms BIGINT,
    updated_at      TIMESTAMPTZ NOT NULL
);
