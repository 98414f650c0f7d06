-- Access control and the tamper-evident audit trail: database roles for the
-- application, ward memberships, multi-factor authentication, care
-- relationships that scope clinical access, emergency access, and the audit
-- table extended with outcome and client details, hash-chained in blocks.

-- +goose Up

-- The application connects as a login role that is a member of hospital_app.
-- hospital_app may read and write the application's tables but may only
-- INSERT into the audit tables: no UPDATE, no DELETE, no TRUNCATE. The
-- migrator (whoever runs this) owns the tables.
-- +goose StatementBegin
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'hospital_app') THEN
        CREATE ROLE hospital_app NOLOGIN;
    END IF;
END
$$;
-- +goose StatementEnd

ALTER TABLE users
    ADD COLUMN mfa_secret_enc      bytea,
    ADD COLUMN mfa_pending_enc     bytea,
    ADD COLUMN mfa_enabled_at      timestamptz,
    ADD COLUMN mfa_last_step       bigint NOT NULL DEFAULT 0,
    ADD COLUMN password_changed_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN last_login_at       timestamptz,
    ADD CONSTRAINT users_mfa_consistent CHECK ((mfa_enabled_at IS NULL) = (mfa_secret_enc IS NULL));

CREATE TABLE user_wards (
    user_id  uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    ward_id  uuid NOT NULL REFERENCES wards (id),
    PRIMARY KEY (user_id, ward_id)
);
CREATE INDEX user_wards_ward_idx ON user_wards (ward_id);

-- One-time recovery codes for a lost authenticator; only their SHA-256 is kept.
CREATE TABLE mfa_recovery_codes (
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  bytea NOT NULL CHECK (length(code_hash) = 32),
    used_at    timestamptz,
    PRIMARY KEY (user_id, code_hash)
);

-- Sessions remember whether the second factor was given, so that a user who
-- must use MFA but has not enrolled yet can do nothing but enrol.
ALTER TABLE sessions ADD COLUMN mfa_verified boolean NOT NULL DEFAULT false;

-- Care relationships put a patient in the scope of a ward, a department or
-- one clinician. Admissions and appointments create them; scoped roles
-- (physicians, nurses) see a patient only through one of them or through
-- an emergency access grant.
CREATE TABLE care_assignments (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    patient_id     uuid NOT NULL REFERENCES patients (id),
    ward_id        uuid REFERENCES wards (id),
    department_id  uuid REFERENCES departments (id),
    user_id        uuid REFERENCES users (id),
    reason         text NOT NULL CHECK (length(reason) BETWEEN 1 AND 200),
    started_at     timestamptz NOT NULL DEFAULT now(),
    ended_at       timestamptz,
    CHECK (num_nonnulls(ward_id, department_id, user_id) = 1),
    CHECK (ended_at IS NULL OR ended_at >= started_at)
);
CREATE INDEX care_assignments_patient_idx ON care_assignments (patient_id) WHERE ended_at IS NULL;
CREATE INDEX care_assignments_ward_idx ON care_assignments (ward_id) WHERE ended_at IS NULL;
CREATE INDEX care_assignments_department_idx ON care_assignments (department_id) WHERE ended_at IS NULL;
CREATE INDEX care_assignments_user_idx ON care_assignments (user_id) WHERE ended_at IS NULL;

-- "Break the glass": a time-boxed grant to open one patient outside one's
-- scope, with the reason given; reviewed by administrators.
CREATE TABLE emergency_access (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      uuid NOT NULL REFERENCES users (id),
    patient_id   uuid NOT NULL REFERENCES patients (id),
    reason       text NOT NULL CHECK (length(reason) BETWEEN 10 AND 500),
    granted_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    reviewed_at  timestamptz,
    reviewed_by  uuid REFERENCES users (id),
    review_note  text NOT NULL DEFAULT '' CHECK (length(review_note) <= 500),
    CHECK (expires_at > granted_at)
);
CREATE INDEX emergency_access_active_idx ON emergency_access (user_id, patient_id, expires_at);
CREATE INDEX emergency_access_granted_idx ON emergency_access (granted_at DESC);

-- The one definition of "this clinician may see this patient": a care
-- relationship with one of their wards, their department or themselves, or
-- an unexpired emergency access grant.
-- +goose StatementBegin
CREATE FUNCTION patient_in_scope(patient uuid, actor uuid, actor_wards uuid[], actor_department uuid) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT EXISTS (
        SELECT 1 FROM care_assignments ca
        WHERE ca.patient_id = patient AND ca.ended_at IS NULL
          AND (ca.user_id = actor OR ca.ward_id = ANY (actor_wards) OR ca.department_id = actor_department)
    ) OR EXISTS (
        SELECT 1 FROM emergency_access ea
        WHERE ea.patient_id = patient AND ea.user_id = actor AND ea.expires_at > now()
    )
$$;
-- +goose StatementEnd

-- Audit rows: who (actor and role), what (action, resource), whose data
-- (patient), the outcome, when, and from where. xact_id orders rows by the
-- transaction that wrote them, for sealing; row_hash is computed by the
-- database itself.
ALTER TABLE audit_events RENAME COLUMN entity_type TO resource_type;
ALTER TABLE audit_events RENAME COLUMN entity_id TO resource_id;
ALTER TABLE audit_events
    ADD COLUMN actor_role  text NOT NULL DEFAULT '',
    ADD COLUMN outcome     text NOT NULL DEFAULT 'success' CHECK (outcome IN ('success', 'denied', 'error')),
    ADD COLUMN client_ip   text NOT NULL DEFAULT '' CHECK (length(client_ip) <= 64),
    ADD COLUMN user_agent  text NOT NULL DEFAULT '' CHECK (length(user_agent) <= 512),
    ADD COLUMN xact_id     xid8 NOT NULL DEFAULT pg_current_xact_id(),
    ADD COLUMN row_hash    bytea;
ALTER TABLE audit_events ALTER COLUMN occurred_at SET DEFAULT clock_timestamp();
CREATE INDEX audit_events_seal_idx ON audit_events (xact_id, id);
CREATE INDEX audit_events_time_idx ON audit_events (occurred_at, id);
CREATE INDEX audit_events_action_idx ON audit_events (action, occurred_at);

-- The canonical content of an audit row, hashed. Timestamps as epoch
-- microseconds and jsonb's own text form keep it independent of session
-- settings.
-- +goose StatementBegin
CREATE FUNCTION audit_row_hash(a audit_events) RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT sha256(convert_to(concat_ws(chr(31),
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
        a.xact_id::text), 'UTF8'))
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION audit_events_hash() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.row_hash := audit_row_hash(NEW);
    RETURN NEW;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER audit_events_hash BEFORE INSERT ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_hash();

UPDATE audit_events a SET row_hash = audit_row_hash(a);
ALTER TABLE audit_events ALTER COLUMN row_hash SET NOT NULL;

-- Sealed blocks chain the audit rows. A block covers, in (xact_id, id)
-- order, rows after the previous block's boundary whose transaction is
-- older than every transaction still running, so no row can later appear
-- inside a sealed range. Requests never wait for sealing: it runs after
-- commit, in the background, under a transaction-scoped advisory lock.
CREATE TABLE audit_blocks (
    seq          bigint PRIMARY KEY CHECK (seq >= 1),
    sealed_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    from_xid     xid8 NOT NULL,
    from_id      bigint NOT NULL,
    to_xid       xid8 NOT NULL,
    to_id        bigint NOT NULL,
    row_count    integer NOT NULL CHECK (row_count > 0),
    event_ids    bigint[] NOT NULL CHECK (cardinality(event_ids) = row_count),
    prev_hash    bytea NOT NULL CHECK (length(prev_hash) = 32),
    hash         bytea NOT NULL CHECK (length(hash) = 32)
);

-- audit_seal seals up to max_rows unsealed rows into the next block and
-- returns how many it sealed (0 when there is nothing to seal or another
-- sealer holds the lock).
-- +goose StatementBegin
CREATE FUNCTION audit_seal(max_rows integer) RETURNS integer
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

-- Privileges of the application role.
GRANT USAGE ON SCHEMA public TO hospital_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO hospital_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO hospital_app;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO hospital_app;
-- Tables created by later migrations get the same grants.
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO hospital_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO hospital_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT EXECUTE ON FUNCTIONS TO hospital_app;
-- The audit trail is append-only for the application.
REVOKE UPDATE, DELETE, TRUNCATE ON audit_events, audit_blocks FROM hospital_app;
-- The migration history is the migrator's.
REVOKE INSERT, UPDATE, DELETE ON goose_db_version FROM hospital_app;

-- +goose Down
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM hospital_app;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM hospital_app;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA public FROM hospital_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON TABLES FROM hospital_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON SEQUENCES FROM hospital_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON FUNCTIONS FROM hospital_app;
REVOKE USAGE ON SCHEMA public FROM hospital_app;
DROP FUNCTION audit_seal(integer);
DROP FUNCTION patient_in_scope(uuid, uuid, uuid[], uuid);
DROP TABLE audit_blocks;
DROP TRIGGER audit_events_hash ON audit_events;
DROP FUNCTION audit_events_hash();
DROP FUNCTION audit_row_hash(audit_events);
ALTER TABLE audit_events DROP COLUMN row_hash, DROP COLUMN xact_id, DROP COLUMN user_agent,
    DROP COLUMN client_ip, DROP COLUMN outcome, DROP COLUMN actor_role;
ALTER TABLE audit_events RENAME COLUMN resource_id TO entity_id;
ALTER TABLE audit_events RENAME COLUMN resource_type TO entity_type;
DROP TABLE emergency_access;
DROP TABLE care_assignments;
ALTER TABLE sessions DROP COLUMN mfa_verified;
DROP TABLE mfa_recovery_codes;
DROP TABLE user_wards;
ALTER TABLE users DROP CONSTRAINT users_mfa_consistent, DROP COLUMN last_login_at, DROP COLUMN password_changed_at,
    DROP COLUMN mfa_last_step, DROP COLUMN mfa_enabled_at, DROP COLUMN mfa_pending_enc, DROP COLUMN mfa_secret_enc;
