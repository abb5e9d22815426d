-- The AXONGATE_CONFIG sequence the serving ingress node had applied when it resolved the
-- request's model (GET /api/v1/config/at rebuilds that config). Rows written before this
-- column, and events from nodes that did not record it, read as 0. ADD COLUMN with a DEFAULT
-- runs on 18.16 and current releases. No question mark in this file: the client would take it
-- for a query parameter.
ALTER TABLE requests ADD COLUMN config_seq UInt64 DEFAULT 0
