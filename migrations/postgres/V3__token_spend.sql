-- Spend and use per user token per day, folded from AXONGATE_REQUESTS (exactly once: the
-- projection's offset moves in the same transaction). Budgets sum the days of their period;
-- "last used" and "requests today" read it directly.
CREATE TABLE token_spend_daily (
    token_id           TEXT NOT NULL,
    day                DATE NOT NULL,
    currency           TEXT NOT NULL DEFAULT '',
    requests           BIGINT NOT NULL DEFAULT 0,
    errors             BIGINT NOT NULL DEFAULT 0,
    input_tokens       BIGINT NOT NULL DEFAULT 0,
    output_tokens      BIGINT NOT NULL DEFAULT 0,
    cache_read_tokens  BIGINT NOT NULL DEFAULT 0,
    cache_write_tokens BIGINT NOT NULL DEFAULT 0,
    cost_nanos         BIGINT NOT NULL DEFAULT 0,
    last_used_at       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (token_id, day)
);
