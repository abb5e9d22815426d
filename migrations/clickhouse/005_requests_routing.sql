-- The routing strategy that ordered a request's candidates ('' for the default weighted order,
-- and for rows before this column) and, for cache affinity, the session's fingerprint (the first
-- 16 hex digits of its SHA-256, never the client's value). A current ClickHouse would declare
-- routing_strategy LowCardinality(String); 18.16 has it only as an experimental setting.
ALTER TABLE requests ADD COLUMN routing_strategy String DEFAULT '', ADD COLUMN routing_session String DEFAULT ''
