-- The W3C trace id of each request (32 lower-case hex digits), empty when the request had none:
-- ingress's own span when it exports traces, else the client's traceparent. Rows written before
-- this column read as ''. ADD COLUMN with a DEFAULT runs on 18.16 and current releases.
ALTER TABLE requests ADD COLUMN trace_id String DEFAULT ''
