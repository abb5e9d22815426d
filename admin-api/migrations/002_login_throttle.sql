-- Admin-API-only state: failed-login counters, shared by every admin-api process so a
-- throttle holds whichever process a client reaches. Keys are `pair:<address>|<user hash>`,
-- `addr:<address>` and `user:<user hash>`, where the user hash is a keyed hash of the
-- username: no typed username (which might be a password typed in the wrong field) is stored.
-- `suppressed` counts throttled attempts not yet reported in an audit event.
CREATE TABLE IF NOT EXISTS admin_login_throttle (
    key          TEXT PRIMARY KEY,
    failures     INTEGER NOT NULL,
    last_failure TIMESTAMPTZ NOT NULL,
    suppressed   BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS admin_login_throttle_last ON admin_login_throttle (last_failure);
