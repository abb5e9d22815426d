-- The team the request's token was charged to ('' when none, and for rows before this column),
-- for the breakdown and filter by team. A current ClickHouse would declare it
-- LowCardinality(String); 18.16 has that only as an experimental setting.
ALTER TABLE requests ADD COLUMN team_id String DEFAULT ''
