-- Single sign-on state, admin-API-only like the sessions (see `db::migrate`).
-- A sign-in started at the identity provider: the hash of its `state`, the PKCE verifier and
-- the nonce the ID token must carry. Used once, within ten minutes.
CREATE TABLE IF NOT EXISTS admin_oidc_logins (
    state_hash    TEXT PRIMARY KEY,
    code_verifier TEXT NOT NULL,
    nonce         TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- A finished sign-in waiting for the UI to take its session: the hash of the one-time code
-- the callback handed the browser, and whose session it opens. Used once, within two minutes.
CREATE TABLE IF NOT EXISTS admin_sso_codes (
    code_hash  TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
