-- The audit trail only grows: every read and change of patient data adds a
-- row, and nothing is ever deleted. As one table, every audited request
-- inserts into indexes that grow without end, two of them (by patient, by
-- actor) at random places; once they outgrow the database's memory each
-- insert reads and dirties pages it no longer holds. Measured with pgbench
-- on a copy holding 24 million audit rows (9 GB, all in the machine's
-- memory), inserting 200 rows per transaction as the read audits' group
-- commits do: 28-31 µs of CPU per row as one table, 23 µs partitioned
-- (new rows in a fresh month); single-row transactions measured the same
-- either way (7,500-8,000/s: the commit dominates). And a hospital that must
-- keep six years of audit online, then archive it, had no way to move old
-- rows out of an append-only table.
--
-- audit_events is now partitioned by month (UTC) of occurred_at. The table
-- as it was becomes the first partition, audit_events_history, holding every
-- row written before the migration; the rest of this month and every later
-- month get partitions of their own, created ahead of time by
-- audit_partitions_ensure (this migration creates three months ahead; the
-- backend calls it every hour). A DEFAULT partition catches rows no month
-- partition covers, so an insert never fails for want of a partition.
-- Inserts write the current month's indexes only, and an archived month can
-- be detached (docs/operations.md).
--
-- What stays the same: the columns, checks, indexes and the hash trigger
-- (declared on the parent, so every partition has them), the seal chain,
-- which orders rows by (xact_id, id) across partitions, and ids from one
-- sequence (its name and value are kept, for backups). What changes: ids are
-- no longer a primary key (a partitioned table's unique keys must include
-- the partition key); they still come only from the identity sequence, and
-- the history partition keeps its own primary key. The application role
-- reaches the rows through the parent only: no privileges on partitions.
--
-- Attaching the history partition reads the whole table once to check its
-- rows fall before the bound, under an exclusive lock: every audited request
-- waits meanwhile. Measured here: the whole migration took 0.3 s over a
-- million audit rows (in memory); plan it for a quiet hour on a large trail.

-- +goose Up
ALTER TABLE audit_events RENAME TO audit_events_history;
ALTER INDEX audit_events_pkey RENAME TO audit_events_history_pkey;
ALTER INDEX audit_events_patient_idx RENAME TO audit_events_history_patient_idx;
ALTER INDEX audit_events_actor_idx RENAME TO audit_events_history_actor_idx;
ALTER INDEX audit_events_seal_idx RENAME TO audit_events_history_seal_idx;
ALTER INDEX audit_events_time_idx RENAME TO audit_events_history_time_idx;
ALTER INDEX audit_events_action_idx RENAME TO audit_events_history_action_idx;
ALTER SEQUENCE audit_events_id_seq RENAME TO audit_events_history_id_seq;
DROP TRIGGER audit_events_hash ON audit_events_history;
-- Renaming the table renamed its row type, which the hash function takes
-- (in a block: sqlc, reading the schema, does not follow the rename).
-- +goose StatementBegin
DO $$ BEGIN DROP FUNCTION audit_row_hash(audit_events_history); END $$;
-- +goose StatementEnd

-- The checks are named as the history partition's are: attaching matches
-- them by name.
CREATE TABLE audit_events (
    id            bigint NOT NULL GENERATED ALWAYS AS IDENTITY,
    occurred_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor_id      uuid,
    action        text NOT NULL CONSTRAINT audit_events_action_check CHECK (action ~ '^[a-z_]+\.[a-z_.]+$'),
    resource_type text NOT NULL,
    resource_id   text NOT NULL DEFAULT '',
    patient_id    uuid,
    request_id    text NOT NULL DEFAULT '',
    details       jsonb NOT NULL DEFAULT '{}'::jsonb,
    actor_role    text NOT NULL DEFAULT '',
    outcome       text NOT NULL DEFAULT 'success' CONSTRAINT audit_events_outcome_check CHECK (outcome IN ('success', 'denied', 'error')),
    client_ip     text NOT NULL DEFAULT '' CONSTRAINT audit_events_client_ip_check CHECK (length(client_ip) <= 64),
    user_agent    text NOT NULL DEFAULT '' CONSTRAINT audit_events_user_agent_check CHECK (length(user_agent) <= 512),
    xact_id       xid8 NOT NULL,
    row_hash      bytea NOT NULL
) PARTITION BY RANGE (occurred_at);

-- One sequence for all partitions, the parent's, under the old name and
-- going on from the old value.
SELECT setval('audit_events_id_seq', s.last_value, s.is_called) FROM audit_events_history_id_seq s;
ALTER TABLE audit_events_history ALTER COLUMN id DROP IDENTITY;

-- The history partition ends where the rows written so far end (the table
-- is locked since the rename: nothing else is being written); the rest of
-- this month gets a partition of its own, so the indexes written from now
-- on start small. A clock that once ran ahead only moves the bound later.
-- +goose StatementBegin
DO $$
DECLARE
    bound     timestamptz := greatest(clock_timestamp(), (SELECT max(occurred_at) FROM audit_events_history) + interval '1 microsecond');
    month_end timestamptz := (date_trunc('month', bound AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC';
    name      text := 'audit_events_' || to_char(bound AT TIME ZONE 'UTC', 'YYYY_MM');
BEGIN
    EXECUTE format('ALTER TABLE audit_events ATTACH PARTITION audit_events_history FOR VALUES FROM (MINVALUE) TO (%L)', bound);
    EXECUTE format('CREATE TABLE %I PARTITION OF audit_events FOR VALUES FROM (%L) TO (%L)', name, bound, month_end);
    EXECUTE format('REVOKE ALL ON %I FROM hospital_app', name);
END;
$$;
-- +goose StatementEnd
CREATE TABLE audit_events_default PARTITION OF audit_events DEFAULT;

-- The history partition's indexes match these and are attached, not built again.
CREATE INDEX audit_events_patient_idx ON audit_events (patient_id, occurred_at) WHERE patient_id IS NOT NULL;
CREATE INDEX audit_events_actor_idx ON audit_events (actor_id, occurred_at);
CREATE INDEX audit_events_seal_idx ON audit_events (xact_id, id);
CREATE INDEX audit_events_time_idx ON audit_events (occurred_at, id);
CREATE INDEX audit_events_action_idx ON audit_events (action, occurred_at);

-- The same hash as before (migration 00013), over the parent's row type; a
-- partition's row converts to it.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION audit_row_hash(a audit_events) RETURNS bytea
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    RETURN sha256(convert_to(concat_ws(chr(31),
            a.id::text,
            (extract(epoch FROM a.occurred_at) * 1000000)::bigint::text,
            coalesce(a.actor_id::text, ''),
            a.actor_role,
            a.action,
            a.resource_type,
            a.resource_id,
            coalesce(a.patient_id::text, ''),
            a.outcome,
            a.request_id,
            a.client_ip,
            a.user_agent,
            a.details::text,
            a.xact_id::text), 'UTF8'));
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER audit_events_hash BEFORE INSERT ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_hash();

-- audit_seal found the last sealed row's xact_id by looking its id up, which
-- without a primary key would probe every partition; the last row in
-- (xact_id, id) order has the largest xact_id of the block.
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
           max(r.xact_id),
           count(*)
      INTO ids, hashes, last_xid, n
      FROM (SELECT e.id, e.xact_id, e.row_hash
              FROM audit_events e
             WHERE (e.xact_id, e.id) > (start_xid, start_id)
               AND e.xact_id < horizon
             ORDER BY e.xact_id, e.id
             LIMIT max_rows) r;
    IF n = 0 THEN
        RETURN 0;
    END IF;
    INSERT INTO audit_blocks (seq, from_xid, from_id, to_xid, to_id, row_count, event_ids, prev_hash, hash)
    VALUES (next_seq, start_xid, start_id, last_xid, ids[n], n, ids, prev_hash, sha256(prev_hash || hashes));
    RETURN n;
END;
$$;
-- +goose StatementEnd

-- audit_partitions_ensure creates the month partitions from this month to
-- months_ahead months ahead that do not exist yet, and returns how many it
-- created. A month is skipped, with a warning, when the DEFAULT partition
-- holds rows of it (they arrived while it was missing; docs/operations.md
-- says how to move them). It runs as the migration's owner: the application
-- may call it but creates no tables itself, and gets no privileges on the
-- partitions (it reads and writes through audit_events).
--
-- A partition is created on its own and then attached: CREATE TABLE ...
-- PARTITION OF would take an exclusive lock on audit_events, and waiting
-- for it behind a long report would stop every audited request in the
-- hospital; ATTACH PARTITION lets inserts go on. The lock time-out bounds
-- the wait anyway (the next hourly call tries again).
-- +goose StatementBegin
CREATE FUNCTION audit_partitions_ensure(months_ahead integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp SET lock_timeout = '5s' AS $$
DECLARE
    first   timestamp := date_trunc('month', now() AT TIME ZONE 'UTC');
    m       timestamp;
    name    text;
    created integer := 0;
BEGIN
    IF months_ahead < 0 OR months_ahead > 24 THEN
        RAISE EXCEPTION 'months_ahead must be between 0 and 24, not %', months_ahead USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- One creator at a time (every replica calls this).
    PERFORM pg_advisory_xact_lock(7310018);
    FOR i IN 0..months_ahead LOOP
        m := first + make_interval(months => i);
        name := 'audit_events_' || to_char(m, 'YYYY_MM');
        CONTINUE WHEN to_regclass(name) IS NOT NULL;
        BEGIN
            EXECUTE format('CREATE TABLE %I (LIKE audit_events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', name);
            EXECUTE format('REVOKE ALL ON %I FROM hospital_app', name);
            EXECUTE format('ALTER TABLE audit_events ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                           name, m AT TIME ZONE 'UTC', (m + interval '1 month') AT TIME ZONE 'UTC');
            created := created + 1;
        EXCEPTION
            WHEN invalid_object_definition THEN
                NULL; -- a partition covers the month already (the history partition)
            WHEN check_violation THEN
                RAISE WARNING 'audit_events_default holds rows of %: the month had no partition when they were written', name;
        END;
    END LOOP;
    RETURN created;
END;
$$;
-- +goose StatementEnd
REVOKE EXECUTE ON FUNCTION audit_partitions_ensure(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_partitions_ensure(integer) TO hospital_app;

SELECT audit_partitions_ensure(3);

-- The trail stays append-only for the application, through the parent only.
REVOKE UPDATE, DELETE, TRUNCATE ON audit_events FROM hospital_app;
REVOKE ALL ON audit_events_history, audit_events_default FROM hospital_app;

-- +goose Down
-- Back to one table: the rows of every partition go into the history
-- partition, which becomes audit_events again.
-- +goose StatementBegin
DO $$
DECLARE
    last_id    bigint;
    was_called boolean;
    p          regclass;
BEGIN
    SELECT s.last_value, s.is_called INTO last_id, was_called FROM audit_events_id_seq s;
    ALTER TABLE audit_events DETACH PARTITION audit_events_history;
    DROP TRIGGER IF EXISTS audit_events_hash ON audit_events_history;
    FOR p IN SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'audit_events'::regclass LOOP
        EXECUTE format('INSERT INTO audit_events_history SELECT * FROM %s', p);
    END LOOP;
    DROP FUNCTION audit_row_hash(audit_events);
    DROP TABLE audit_events;
    DROP FUNCTION audit_partitions_ensure(integer);
    ALTER TABLE audit_events_history RENAME TO audit_events;
    ALTER INDEX audit_events_history_pkey RENAME TO audit_events_pkey;
    ALTER INDEX audit_events_history_patient_idx RENAME TO audit_events_patient_idx;
    ALTER INDEX audit_events_history_actor_idx RENAME TO audit_events_actor_idx;
    ALTER INDEX audit_events_history_seal_idx RENAME TO audit_events_seal_idx;
    ALTER INDEX audit_events_history_time_idx RENAME TO audit_events_time_idx;
    ALTER INDEX audit_events_history_action_idx RENAME TO audit_events_action_idx;
    ALTER TABLE audit_events ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY;
    PERFORM setval(pg_get_serial_sequence('audit_events', 'id'), last_id, was_called);
END;
$$;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE FUNCTION audit_row_hash(a audit_events) RETURNS bytea
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    RETURN sha256(convert_to(concat_ws(chr(31),
            a.id::text,
            (extract(epoch FROM a.occurred_at) * 1000000)::bigint::text,
            coalesce(a.actor_id::text, ''),
            a.actor_role,
            a.action,
            a.resource_type,
            a.resource_id,
            coalesce(a.patient_id::text, ''),
            a.outcome,
            a.request_id,
            a.client_ip,
            a.user_agent,
            a.details::text,
            a.xact_id::text), 'UTF8'));
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER audit_events_hash BEFORE INSERT ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_hash();
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
GRANT SELECT, INSERT ON audit_events TO hospital_app;
