-- Queries used only by tests of the postgres package itself.

-- name: SleepForTest :one
SELECT pg_sleep(sqlc.arg(seconds)::float8)::text AS slept;
