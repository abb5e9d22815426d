-- Admin-API-only state: login sessions. Not a view of any stream, so the projector neither
-- owns nor rebuilds it; admin-api applies this file itself at start (see `db::migrate`).
-- Only a SHA-256 hash of the session token is stored, never the token.
CREATE TABLE IF NOT EXISTS admin_sessions (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ,
    client_ip  TEXT
);
CREATE INDEX IF NOT EXISTS admin_sessions_user ON admin_sessions (user_id);
