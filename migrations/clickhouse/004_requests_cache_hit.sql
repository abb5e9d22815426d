-- Response-cache hits: cache_hit is 1 when the cache answered (the row's own usage and cost are
-- then zero), and the saved_ columns are what the cached answer had used and cost (input
-- counts every kind of input token: plain, cache read and cache write). Rows before this
-- column read as 0. Several ADD COLUMN in one ALTER run on 18.16 and current releases.
ALTER TABLE requests ADD COLUMN cache_hit UInt8 DEFAULT 0, ADD COLUMN saved_input_tokens UInt64 DEFAULT 0, ADD COLUMN saved_output_tokens UInt64 DEFAULT 0, ADD COLUMN saved_cost_nanos Int64 DEFAULT 0
