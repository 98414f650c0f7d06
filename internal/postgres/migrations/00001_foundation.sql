-- Foundation schema: facility structure, users and sessions, the patient
-- core and the audit table. Later modules add their own migrations; a
-- migration is never edited after it has landed.

-- +goose Up
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE departments (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    code        text NOT NULL CHECK (code ~ '^[A-Z0-9][A-Z0-9-]{1,15}$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    kind        text NOT NULL CHECK (kind IN ('clinical', 'support', 'administrative')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT departments_code_key UNIQUE (code)
);

CREATE TABLE wards (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    department_id   uuid NOT NULL REFERENCES departments (id),
    code            text NOT NULL CHECK (code ~ '^[A-Z0-9][A-Z0-9-]{1,15}$'),
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    specialty       text NOT NULL DEFAULT '' CHECK (length(specialty) <= 100),
    sex_restriction text CHECK (sex_restriction IN ('female', 'male')),
    floor           text NOT NULL DEFAULT '' CHECK (length(floor) <= 20),
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT wards_code_key UNIQUE (code)
);
CREATE INDEX wards_department_idx ON wards (department_id);

CREATE TABLE rooms (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    ward_id    uuid NOT NULL REFERENCES wards (id),
    code       text NOT NULL CHECK (length(code) BETWEEN 1 AND 20),
    CONSTRAINT rooms_ward_code_key UNIQUE (ward_id, code)
);

CREATE TABLE beds (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    room_id     uuid NOT NULL REFERENCES rooms (id),
    code        text NOT NULL CHECK (length(code) BETWEEN 1 AND 20),
    bed_type    text NOT NULL DEFAULT 'general'
                CHECK (bed_type IN ('general', 'icu', 'isolation', 'paediatric', 'maternity')),
    status      text NOT NULL DEFAULT 'available'
                CHECK (status IN ('available', 'occupied', 'reserved', 'cleaning', 'out_of_service')),
    version     integer NOT NULL DEFAULT 1,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT beds_room_code_key UNIQUE (room_id, code)
);

CREATE TABLE users (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    username       text NOT NULL CHECK (username ~ '^[a-z0-9][a-z0-9._-]{2,63}$'),
    display_name   text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 200),
    role           text NOT NULL CHECK (role IN ('admin', 'physician', 'nurse', 'receptionist',
                       'pharmacist', 'lab_technician', 'billing_clerk', 'inventory_manager', 'auditor')),
    department_id  uuid REFERENCES departments (id),
    password_hash  text NOT NULL,
    active         boolean NOT NULL DEFAULT true,
    version        integer NOT NULL DEFAULT 1,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_username_key UNIQUE (username)
);

CREATE TABLE sessions (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id       uuid NOT NULL REFERENCES users (id),
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    revoked_at    timestamptz,
    revoke_reason text,
    client_ip     text NOT NULL DEFAULT '',
    user_agent    text NOT NULL DEFAULT '' CHECK (length(user_agent) <= 512),
    CHECK (expires_at > created_at)
);
CREATE INDEX sessions_user_active_idx ON sessions (user_id) WHERE revoked_at IS NULL;

-- Refresh tokens are opaque; only their SHA-256 is stored. Each is used
-- once: presenting a used one again means it was stolen, and the whole
-- session is revoked.
CREATE TABLE refresh_tokens (
    token_hash  bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    session_id  uuid NOT NULL REFERENCES sessions (id),
    issued_at   timestamptz NOT NULL DEFAULT now(),
    used_at     timestamptz
);
CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);

-- Medical record numbers: a never-reused sequence plus a Luhn check digit,
-- so a mistyped MRN is caught before it finds the wrong patient.
CREATE SEQUENCE patient_mrn_seq START WITH 1000001 NO CYCLE;

-- +goose StatementBegin
CREATE FUNCTION luhn_check_digit(digits text) RETURNS integer
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    total integer := 0;
    d integer;
    dbl boolean := true;
BEGIN
    FOR i IN REVERSE length(digits)..1 LOOP
        d := substr(digits, i, 1)::integer;
        IF dbl THEN
            d := d * 2;
            IF d > 9 THEN d := d - 9; END IF;
        END IF;
        total := total + d;
        dbl := NOT dbl;
    END LOOP;
    RETURN (10 - total % 10) % 10;
END;
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION next_mrn() RETURNS text
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    n text := nextval('patient_mrn_seq')::text;
BEGIN
    RETURN n || luhn_check_digit(n)::text;
END;
$$;
-- +goose StatementEnd

CREATE TABLE patients (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    mrn           text NOT NULL DEFAULT next_mrn() CHECK (mrn ~ '^[0-9]{8,}$'),
    family_name   text NOT NULL CHECK (length(family_name) BETWEEN 1 AND 100),
    given_names   text NOT NULL CHECK (length(given_names) BETWEEN 1 AND 200),
    birth_date    date CHECK (birth_date >= '1880-01-01'),
    sex           text NOT NULL DEFAULT 'unknown' CHECK (sex IN ('female', 'male', 'other', 'unknown')),
    phone         text NOT NULL DEFAULT '' CHECK (length(phone) <= 40),
    email         text NOT NULL DEFAULT '' CHECK (length(email) <= 254),
    address_line  text NOT NULL DEFAULT '' CHECK (length(address_line) <= 200),
    city          text NOT NULL DEFAULT '' CHECK (length(city) <= 100),
    postal_code   text NOT NULL DEFAULT '' CHECK (length(postal_code) <= 20),
    country       text NOT NULL DEFAULT '' CHECK (country = '' OR country ~ '^[A-Z]{2}$'),
    deceased      boolean NOT NULL DEFAULT false,
    version       integer NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    created_by    uuid REFERENCES users (id),
    CONSTRAINT patients_mrn_key UNIQUE (mrn)
);
CREATE INDEX patients_name_idx ON patients (lower(family_name) text_pattern_ops, lower(given_names), id);
CREATE INDEX patients_created_idx ON patients (created_at, id);

-- Audit is not logging: every read and change of patient data writes a row
-- here in the same transaction as the work.
CREATE TABLE audit_events (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at  timestamptz NOT NULL DEFAULT now(),
    actor_id     uuid REFERENCES users (id),
    action       text NOT NULL CHECK (action ~ '^[a-z_]+\.[a-z_.]+$'),
    entity_type  text NOT NULL,
    entity_id    text NOT NULL DEFAULT '',
    patient_id   uuid REFERENCES patients (id),
    request_id   text NOT NULL DEFAULT '',
    details      jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_events_patient_idx ON audit_events (patient_id, occurred_at) WHERE patient_id IS NOT NULL;
CREATE INDEX audit_events_actor_idx ON audit_events (actor_id, occurred_at);

-- +goose Down
DROP TABLE audit_events;
DROP TABLE patients;
DROP FUNCTION next_mrn();
DROP FUNCTION luhn_check_digit(text);
DROP SEQUENCE patient_mrn_seq;
DROP TABLE refresh_tokens;
DROP TABLE sessions;
DROP TABLE users;
DROP TABLE beds;
DROP TABLE rooms;
DROP TABLE wards;
DROP TABLE departments;
