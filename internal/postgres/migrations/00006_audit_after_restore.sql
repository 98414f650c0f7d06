-- Audit rows are sealed in the order of the transactions that wrote them
-- (xact_id). A logical restore into another PostgreSQL server starts a new
-- transaction counter, lower than the restored rows' ids, so new rows would
-- sort before the sealed blocks and never be sealed. audit_xact_id() adds
-- an offset, set by audit_after_restore() when a backup is restored, that
-- keeps new ids above every restored one. On the original server the
-- offset is 0 and nothing changes.

-- +goose Up
CREATE TABLE audit_xid_offset (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    xid_offset numeric NOT NULL DEFAULT 0 CHECK (xid_offset >= 0)
);
INSERT INTO audit_xid_offset DEFAULT VALUES;
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON audit_xid_offset FROM hospital_app;

-- +goose StatementBegin
CREATE FUNCTION audit_xact_id() RETURNS xid8
LANGUAGE sql STABLE AS $$
    SELECT (pg_current_xact_id()::text::numeric + o.xid_offset)::text::xid8 FROM audit_xid_offset o
$$;
-- +goose StatementEnd
ALTER TABLE audit_events ALTER COLUMN xact_id SET DEFAULT audit_xact_id();

-- audit_after_restore moves the offset so the next transaction's id is
-- above every restored audit row and sealed block. Run by `restore` in its
-- transaction; safe to run again.
-- +goose StatementBegin
CREATE FUNCTION audit_after_restore() RETURNS numeric
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
REVOKE EXECUTE ON FUNCTION audit_after_restore() FROM hospital_app, PUBLIC;

-- audit_seal: the horizon (oldest transaction still running) in the same
-- offset terms.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION audit_seal(max_rows integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    prev       audit_blocks%ROWTYPE;
    horizon    xid8 := (pg_snapshot_xmin(pg_current_snapshot())::text::numeric
                        + (SELECT xid_offset FROM audit_xid_offset))::text::xid8;
    start_xid  xid8 := '0'::xid8;
    start_id   bigint := 0;
    prev_hash  bytea := '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea;
    next_seq   bigint := 1;
    ids        bigint[];
    hashes     bytea;
    last_xid   xid8;
    last_id    bigint;
    n          integer;
BEGIN
    IF NOT pg_try_advisory_xact_lock(7310017) THEN
        RETURN 0;
    END IF;
    SELECT * INTO prev FROM audit_blocks ORDER BY seq DESC LIMIT 1;
    IF FOUND THEN
        start_xid := prev.to_xid;
        start_id := prev.to_id;
        prev_hash := prev.hash;
        next_seq := prev.seq + 1;
    END IF;
    SELECT array_agg(r.id ORDER BY r.xact_id, r.id),
           string_agg(r.row_hash, ''::bytea ORDER BY r.xact_id, r.id),
           count(*)
      INTO ids, hashes, n
      FROM (SELECT e.id, e.xact_id, e.row_hash
              FROM audit_events e
             WHERE (e.xact_id, e.id) > (start_xid, start_id)
               AND e.xact_id < horizon
             ORDER BY e.xact_id, e.id
             LIMIT max_rows) r;
    IF n = 0 THEN
        RETURN 0;
    END IF;
    SELECT e.xact_id, e.id INTO last_xid, last_id FROM audit_events e WHERE e.id = ids[n];
    INSERT INTO audit_blocks (seq, from_xid, from_id, to_xid, to_id, row_count, event_ids, prev_hash, hash)
    VALUES (next_seq, start_xid, start_id, last_xid, last_id, n, ids, prev_hash, sha256(prev_hash || hashes));
    RETURN n;
END;
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION audit_seal(max_rows integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    prev       audit_blocks%ROWTYPE;
    horizon    xid8 := pg_snapshot_xmin(pg_current_snapshot());
    start_xid  xid8 := '0'::xid8;
    start_id   bigint := 0;
    prev_hash  bytea := '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea;
    next_seq   bigint := 1;
    ids        bigint[];
    hashes     bytea;
    last_xid   xid8;
    last_id    bigint;
    n          integer;
BEGIN
    IF NOT pg_try_advisory_xact_lock(7310017) THEN
        RETURN 0;
    END IF;
    SELECT * INTO prev FROM audit_blocks ORDER BY seq DESC LIMIT 1;
    IF FOUND THEN
        start_xid := prev.to_xid;
        start_id := prev.to_id;
        prev_hash := prev.hash;
        next_seq := prev.seq + 1;
    END IF;
    SELECT array_agg(r.id ORDER BY r.xact_id, r.id),
           string_agg(r.row_hash, ''::bytea ORDER BY r.xact_id, r.id),
           count(*)
      INTO ids, hashes, n
      FROM (SELECT e.id, e.xact_id, e.row_hash
              FROM audit_events e
             WHERE (e.xact_id, e.id) > (start_xid, start_id)
               AND e.xact_id < horizon
             ORDER BY e.xact_id, e.id
             LIMIT max_rows) r;
    IF n = 0 THEN
        RETURN 0;
    END IF;
    SELECT e.xact_id, e.id INTO last_xid, last_id FROM audit_events e WHERE e.id = ids[n];
    INSERT INTO audit_blocks (seq, from_xid, from_id, to_xid, to_id, row_count, event_ids, prev_hash, hash)
    VALUES (next_seq, start_xid, start_id, last_xid, last_id, n, ids, prev_hash, sha256(prev_hash || hashes));
    RETURN n;
END;
$$;
-- +goose StatementEnd
ALTER TABLE audit_events ALTER COLUMN xact_id SET DEFAULT pg_current_xact_id();
DROP FUNCTION audit_after_restore();
DROP FUNCTION audit_xact_id();
DROP TABLE audit_xid_offset;
