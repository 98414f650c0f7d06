-- Archiving a month of the audit trail, with the chain still verifiable.
--
-- A month partition of audit_events could be detached for archiving
-- (docs/operations.md), but the chain still lists its rows, so the full
-- verification (the nightly audit-verify job) then reported the first of
-- them as deleted, and went on paging, until the month was attached again.
-- Archiving is now a recorded act: audit_archive detaches the partition and
-- records which blocks hold its rows, after the caller (`hospital-erp audit
-- archive`) has verified those blocks in the same transaction. Verification
-- then checks the links of those blocks but not their rows, and says so in
-- its report; audit_unarchive attaches the partition again and removes the
-- record. Blocks at a month's edges also hold rows of the next or previous
-- month (the chain orders rows by transaction, partitions by time): those
-- rows are left unverified while the month is away, and the report's block
-- range shows it.
--
-- Only the schema owner (the migrator) can archive: detaching needs
-- ownership, and the application has no privileges on the record beyond
-- reading it. A record that claims blocks it should not is visible in
-- every report (partition, blocks, rows, when).

-- +goose Up
CREATE TABLE audit_archives (
    partition    text PRIMARY KEY,
    bound        text NOT NULL,   -- the partition bound, as pg_get_expr gives it, to attach it again
    first_block  bigint,          -- the blocks holding its rows; NULL for a partition without rows
    last_block   bigint,
    row_count    bigint NOT NULL CHECK (row_count >= 0),
    archived_at  timestamptz NOT NULL DEFAULT now(),
    CHECK ((row_count = 0) = (first_block IS NULL) AND (first_block IS NULL) = (last_block IS NULL)),
    CHECK (first_block <= last_block)
);
REVOKE ALL ON audit_archives FROM hospital_app;
GRANT SELECT ON audit_archives TO hospital_app;

-- audit_archive_plan says what archiving partition would record: its
-- bound, rows and the blocks holding them. It refuses what cannot be
-- archived: not a partition of audit_events, the DEFAULT partition, a month
-- not over yet, or rows not sealed yet.
-- +goose StatementBegin
CREATE FUNCTION audit_archive_plan(p_partition text, OUT bound text, OUT first_block bigint, OUT last_block bigint,
                                   OUT row_count bigint)
LANGUAGE plpgsql AS $$
DECLARE
    upper_bound timestamptz;
    lo record;
    hi record;
BEGIN
    SELECT pg_get_expr(c.relpartbound, c.oid) INTO bound
    FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = 'audit_events'::regclass AND c.relname = p_partition;
    IF bound IS NULL THEN
        RAISE EXCEPTION 'audit: % is not a partition of audit_events', p_partition USING ERRCODE = 'no_data_found';
    END IF;
    IF bound = 'DEFAULT' THEN
        RAISE EXCEPTION 'audit: the DEFAULT partition cannot be archived' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    upper_bound := (regexp_match(bound, 'TO \(''([^'']+)''\)'))[1]::timestamptz;
    IF upper_bound IS NULL OR upper_bound > now() THEN
        RAISE EXCEPTION 'audit: % is not over yet (it ends at %)', p_partition, upper_bound USING ERRCODE = 'invalid_parameter_value';
    END IF;
    EXECUTE format('SELECT count(*) FROM %I', p_partition) INTO row_count;
    IF row_count = 0 THEN
        RETURN;
    END IF;
    EXECUTE format('SELECT xact_id, id FROM %I ORDER BY xact_id, id LIMIT 1', p_partition) INTO lo;
    EXECUTE format('SELECT xact_id, id FROM %I ORDER BY xact_id DESC, id DESC LIMIT 1', p_partition) INTO hi;
    SELECT b.seq INTO first_block FROM audit_blocks b WHERE (b.to_xid, b.to_id) >= (lo.xact_id, lo.id) ORDER BY b.seq LIMIT 1;
    SELECT b.seq INTO last_block FROM audit_blocks b WHERE (b.to_xid, b.to_id) >= (hi.xact_id, hi.id) ORDER BY b.seq LIMIT 1;
    IF last_block IS NULL THEN
        RAISE EXCEPTION 'audit: % holds rows not sealed yet; try again when the sealer has caught up', p_partition
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
END;
$$;
-- +goose StatementEnd

-- audit_archive records and detaches the partition, if the plan is still
-- the one the caller verified.
-- +goose StatementBegin
CREATE FUNCTION audit_archive(p_partition text, p_first_block bigint, p_last_block bigint, p_row_count bigint)
RETURNS audit_archives LANGUAGE plpgsql AS $$
DECLARE
    p  record;
    a  audit_archives;
BEGIN
    LOCK TABLE audit_events IN ACCESS EXCLUSIVE MODE;
    SELECT * INTO p FROM audit_archive_plan(p_partition);
    IF p.first_block IS DISTINCT FROM p_first_block OR p.last_block IS DISTINCT FROM p_last_block
       OR p.row_count <> p_row_count THEN
        RAISE EXCEPTION 'audit: % changed since it was verified', p_partition USING ERRCODE = 'serialization_failure';
    END IF;
    INSERT INTO audit_archives (partition, bound, first_block, last_block, row_count)
    VALUES (p_partition, p.bound, p.first_block, p.last_block, p.row_count) RETURNING * INTO a;
    EXECUTE format('ALTER TABLE audit_events DETACH PARTITION %I', p_partition);
    RETURN a;
END;
$$;
-- +goose StatementEnd

-- audit_unarchive attaches an archived partition again (restored from its
-- dump under the same name) and removes the record.
-- +goose StatementBegin
CREATE FUNCTION audit_unarchive(p_partition text) RETURNS audit_archives LANGUAGE plpgsql AS $$
DECLARE
    a audit_archives;
BEGIN
    DELETE FROM audit_archives WHERE partition = p_partition RETURNING * INTO a;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'audit: % is not archived', p_partition USING ERRCODE = 'no_data_found';
    END IF;
    IF to_regclass(quote_ident(p_partition)) IS NULL THEN
        RAISE EXCEPTION 'audit: restore the table % from its dump first', p_partition USING ERRCODE = 'undefined_table';
    END IF;
    EXECUTE format('ALTER TABLE audit_events ATTACH PARTITION %I %s', p_partition, a.bound);
    EXECUTE format('REVOKE ALL ON %I FROM hospital_app', p_partition);
    RETURN a;
END;
$$;
-- +goose StatementEnd
REVOKE ALL ON FUNCTION audit_archive_plan(text), audit_archive(text, bigint, bigint, bigint), audit_unarchive(text)
    FROM PUBLIC, hospital_app;

-- +goose Down
DROP FUNCTION audit_unarchive(text);
DROP FUNCTION audit_archive(text, bigint, bigint, bigint);
DROP FUNCTION audit_archive_plan(text);
DROP TABLE audit_archives;
