-- No JIT compilation for this database. PostgreSQL compiles a plan whose
-- estimated cost passes jit_above_cost, and estimates are pessimistic for
-- queries that stop early (an index walk with a LIMIT): the audit sealer's
-- check every second spent 20 ms compiling a query that runs in 0.15 ms.
-- Every query here is short, and JIT only pays for long analytical scans.
-- Applies to sessions opened after the migration (new pool connections).

-- +goose Up
-- +goose StatementBegin
DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET jit = off', current_database()); END $$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
DO $$ BEGIN EXECUTE format('ALTER DATABASE %I RESET jit', current_database()); END $$;
-- +goose StatementEnd
