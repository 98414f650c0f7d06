-- Each audit row's trigger read the restore offset (audit_xid_offset, one
-- row, migration 00006) with a query of its own: in a CPU profile of the
-- database during patient reads, whose audit rows are copied in batches,
-- that query was 13% of the database's time. The offset changes only when
-- a backup is restored, so it is now also a constant function,
-- audit_xid_offset(), that PostgreSQL folds into the trigger's cached plan;
-- audit_after_restore() rewrites the function whenever it moves the offset,
-- and replacing a function invalidates the plans that used it. The table
-- stays the record (audit_seal reads it).

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION audit_xid_offset_write() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('CREATE OR REPLACE FUNCTION audit_xid_offset() RETURNS numeric LANGUAGE sql IMMUTABLE PARALLEL SAFE AS %L',
                   format('SELECT %s::numeric', (SELECT o.xid_offset FROM audit_xid_offset o)));
END;
$$;
-- +goose StatementEnd
REVOKE EXECUTE ON FUNCTION audit_xid_offset_write() FROM PUBLIC;
SELECT audit_xid_offset_write();

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION audit_events_hash() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.xact_id := (pg_current_xact_id()::text::numeric + audit_xid_offset())::text::xid8;
    NEW.row_hash := audit_row_hash(NEW);
    RETURN NEW;
END;
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION audit_after_restore() RETURNS numeric
LANGUAGE plpgsql AS $$
DECLARE
    top  numeric := greatest(
        coalesce((SELECT max(xact_id::text::numeric) FROM audit_events), 0),
        coalesce((SELECT max(to_xid::text::numeric) FROM audit_blocks), 0));
    here numeric := pg_current_xact_id()::text::numeric;
    off  numeric := greatest(top - here + 1, 0);
BEGIN
    UPDATE audit_xid_offset SET xid_offset = greatest(xid_offset, off);
    PERFORM audit_xid_offset_write();
    RETURN off;
END;
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION audit_after_restore() RETURNS numeric
LANGUAGE plpgsql AS $$
DECLARE
    top  numeric := greatest(
        coalesce((SELECT max(xact_id::text::numeric) FROM audit_events), 0),
        coalesce((SELECT max(to_xid::text::numeric) FROM audit_blocks), 0));
    here numeric := pg_current_xact_id()::text::numeric;
    off  numeric := greatest(top - here + 1, 0);
BEGIN
    UPDATE audit_xid_offset SET xid_offset = greatest(xid_offset, off);
    RETURN off;
END;
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION audit_events_hash() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.xact_id := (pg_current_xact_id()::text::numeric + (SELECT o.xid_offset FROM audit_xid_offset o))::text::xid8;
    NEW.row_hash := audit_row_hash(NEW);
    RETURN NEW;
END;
$$;
-- +goose StatementEnd

DROP FUNCTION audit_xid_offset();
DROP FUNCTION audit_xid_offset_write();
