-- One row per finished request, from AXONGATE_REQUESTS. No bodies, no secrets.
--
-- Runs on ClickHouse 18.16 (Debian) and current releases. A current ClickHouse would do
-- better with LowCardinality(String) for the low-cardinality text columns, DateTime64(6) for
-- sub-second times and a TTL; 18.16 has none of them, so times are whole seconds plus
-- microsecond latencies in integer columns.
--
-- ReplacingMergeTree keyed by (date, event_id) folds away a request published twice beyond
-- the stream's de-duplication window. The projector also skips any stream sequence at or
-- below max(stream_seq), so redelivery after a crash between insert and ack adds nothing.
CREATE TABLE IF NOT EXISTS requests (
    event_id           UUID,
    stream_seq         UInt64,
    date               Date,
    occurred_at        DateTime,
    started_at         DateTime,
    node               String,
    request_id         String,
    token_id           String,
    user_id            String,
    model_alias        String,
    provider_id        String,
    upstream_model     String,
    provider_key_id    String,
    client_protocol    String,
    upstream_protocol  String,
    stream             UInt8,
    outcome            String,
    error_kind         String,
    http_status        UInt16,
    input_tokens       UInt64,
    output_tokens      UInt64,
    cache_read_tokens  UInt64,
    cache_write_tokens UInt64,
    usage_estimated    UInt8,
    cost_nanos         Int64,
    currency           String,
    price_version      UInt32,
    has_ttfb           UInt8,
    ttfb_us            UInt64,
    latency_us         UInt64,
    attempts           UInt16
) ENGINE = ReplacingMergeTree(stream_seq)
PARTITION BY toYYYYMM(date)
ORDER BY (date, event_id)
