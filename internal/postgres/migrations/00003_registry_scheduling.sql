-- The master patient index (identifiers, contacts, FHIR-friendly fields,
-- typo-tolerant search, merges), outpatient scheduling (practitioners,
-- clinics, availability, appointments that cannot double-book), the walk-in
-- queue, and idempotency keys for commands.

-- +goose Up
CREATE EXTENSION IF NOT EXISTS unaccent;
CREATE EXTENSION IF NOT EXISTS btree_gist;

-- unaccent is STABLE (its dictionary could change); wrapping it with the
-- dictionary named explicitly makes an IMMUTABLE function that generated
-- columns and indexes may use.
-- +goose StatementBegin
CREATE FUNCTION f_unaccent(text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$
    SELECT public.unaccent('public.unaccent'::regdictionary, $1)
$$;
-- +goose StatementEnd

-- Patient fields chosen to map losslessly onto FHIR R4 Patient:
-- name (family, given, prefix, suffix, preferred as a second name),
-- gender (administrative sex) plus gender identity and birth sex
-- (US Core extensions), birthDate, deceased[x], telecom, address,
-- communication.language (preferred), contact (next of kin),
-- identifier, active and link (replaced-by) for merges.
ALTER TABLE patients
    ADD COLUMN name_prefix     text NOT NULL DEFAULT '' CHECK (length(name_prefix) <= 40),
    ADD COLUMN name_suffix     text NOT NULL DEFAULT '' CHECK (length(name_suffix) <= 40),
    ADD COLUMN preferred_name  text NOT NULL DEFAULT '' CHECK (length(preferred_name) <= 100),
    ADD COLUMN gender_identity text NOT NULL DEFAULT '' CHECK (length(gender_identity) <= 60),
    ADD COLUMN birth_sex       text NOT NULL DEFAULT '' CHECK (birth_sex IN ('', 'F', 'M', 'UNK')),
    ADD COLUMN deceased_at     timestamptz,
    ADD COLUMN mobile_phone    text NOT NULL DEFAULT '' CHECK (length(mobile_phone) <= 40),
    ADD COLUMN address_line2   text NOT NULL DEFAULT '' CHECK (length(address_line2) <= 200),
    ADD COLUMN district        text NOT NULL DEFAULT '' CHECK (length(district) <= 100),
    ADD COLUMN language        text NOT NULL DEFAULT '' CHECK (language = '' OR language ~ '^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$'),
    ADD COLUMN active          boolean NOT NULL DEFAULT true,
    ADD COLUMN merged_into     uuid REFERENCES patients (id),
    ADD CONSTRAINT patients_deceased_consistent CHECK (deceased_at IS NULL OR deceased),
    ADD CONSTRAINT patients_merge_consistent CHECK ((merged_into IS NULL) = active),
    ADD CONSTRAINT patients_not_self_merged CHECK (merged_into IS NULL OR merged_into <> id);

ALTER TABLE patients
    ADD COLUMN search_name text GENERATED ALWAYS AS (
        lower(f_unaccent(given_names || ' ' || family_name || ' ' || preferred_name))) STORED,
    ADD COLUMN phone_digits text GENERATED ALWAYS AS (
        regexp_replace(phone, '[^0-9]', '', 'g') || ' ' || regexp_replace(mobile_phone, '[^0-9]', '', 'g')) STORED;
CREATE INDEX patients_search_name_trgm ON patients USING gin (search_name gin_trgm_ops);
CREATE INDEX patients_phone_trgm ON patients USING gin (phone_digits gin_trgm_ops);
CREATE INDEX patients_birth_date_idx ON patients (birth_date);

CREATE TABLE patient_identifiers (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    patient_id  uuid NOT NULL REFERENCES patients (id),
    -- FHIR identifier.type code: NI national id, MB insurance member number,
    -- PPN passport, DL driver's licence, MR another facility's record number.
    type        text NOT NULL CHECK (type IN ('NI', 'MB', 'PPN', 'DL', 'MR')),
    -- FHIR identifier.system: the issuer's URI, e.g. urn:oid:2.16.840.1.113883.2.1.4.1 (NHS number).
    system      text NOT NULL CHECK (length(system) BETWEEN 1 AND 200),
    value       text NOT NULL CHECK (length(value) BETWEEN 1 AND 100),
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT patient_identifiers_system_value_key UNIQUE (system, value)
);
CREATE INDEX patient_identifiers_patient_idx ON patient_identifiers (patient_id);
CREATE INDEX patient_identifiers_value_idx ON patient_identifiers (value);

-- Next of kin and other contacts (FHIR Patient.contact).
CREATE TABLE patient_contacts (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    patient_id    uuid NOT NULL REFERENCES patients (id),
    -- HL7 v2 table 0131 codes: N next of kin, C emergency contact, E employer, F federal agency, I insurer, O other.
    relationship  text NOT NULL CHECK (relationship IN ('N', 'C', 'E', 'I', 'O')),
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    phone         text NOT NULL DEFAULT '' CHECK (length(phone) <= 40),
    email         text NOT NULL DEFAULT '' CHECK (length(email) <= 254),
    address       text NOT NULL DEFAULT '' CHECK (length(address) <= 300),
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX patient_contacts_patient_idx ON patient_contacts (patient_id);

-- Merges: which rows moved from the merged record to the survivor, so a
-- merge can be undone exactly.
CREATE TABLE patient_merges (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    survivor_id  uuid NOT NULL REFERENCES patients (id),
    merged_id    uuid NOT NULL REFERENCES patients (id),
    moved        jsonb NOT NULL DEFAULT '{}'::jsonb,
    merged_at    timestamptz NOT NULL DEFAULT now(),
    merged_by    uuid REFERENCES users (id),
    undone_at    timestamptz,
    undone_by    uuid REFERENCES users (id),
    CHECK (survivor_id <> merged_id)
);
CREATE UNIQUE INDEX patient_merges_active_key ON patient_merges (merged_id) WHERE undone_at IS NULL;

-- merge_patients moves every row that references the merged patient to the
-- survivor, in every table with a foreign key to patients(id) (so tables of
-- later modules are included without changing this function), except the
-- audit trail, which keeps naming the record as it was. It returns what
-- moved, per table and column, for unmerge_patients.
-- +goose StatementBegin
CREATE FUNCTION merge_patients(survivor uuid, merged uuid) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    fk record;
    ids jsonb;
    moved jsonb := '{}'::jsonb;
BEGIN
    FOR fk IN
        SELECT c.conrelid::regclass::text AS tbl, a.attname AS col
        FROM pg_constraint c
        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
        WHERE c.contype = 'f' AND c.confrelid = 'patients'::regclass AND cardinality(c.conkey) = 1
          AND c.conrelid NOT IN ('patients'::regclass, 'audit_events'::regclass, 'patient_merges'::regclass)
        ORDER BY 1, 2
    LOOP
        EXECUTE format('WITH m AS (UPDATE %s SET %I = $1 WHERE %I = $2 RETURNING id) SELECT coalesce(jsonb_agg(id), ''[]'') FROM m',
                       fk.tbl, fk.col, fk.col)
            INTO ids USING survivor, merged;
        IF jsonb_array_length(ids) > 0 THEN
            moved := moved || jsonb_build_object(fk.tbl || '.' || fk.col, ids);
        END IF;
    END LOOP;
    RETURN moved;
END;
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION unmerge_patients(merged uuid, moved jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    entry record;
    tbl text;
    col text;
BEGIN
    FOR entry IN SELECT key, value FROM jsonb_each(moved) LOOP
        tbl := split_part(entry.key, '.', 1);
        col := split_part(entry.key, '.', 2);
        EXECUTE format('UPDATE %I SET %I = $1 WHERE id IN (SELECT (jsonb_array_elements_text($2))::uuid)', tbl, col)
            USING merged, entry.value;
    END LOOP;
END;
$$;
-- +goose StatementEnd

-- Practitioners are the clinicians who can be booked; most are users.
CREATE TABLE practitioners (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id        uuid REFERENCES users (id),
    display_name   text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 200),
    department_id  uuid NOT NULL REFERENCES departments (id),
    specialty      text NOT NULL DEFAULT '' CHECK (length(specialty) <= 100),
    active         boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT practitioners_user_key UNIQUE (user_id)
);

CREATE TABLE clinics (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    department_id  uuid NOT NULL REFERENCES departments (id),
    code           text NOT NULL CHECK (code ~ '^[A-Z0-9][A-Z0-9-]{1,15}$'),
    name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    location       text NOT NULL DEFAULT '' CHECK (length(location) <= 200),
    slot_minutes   integer NOT NULL CHECK (slot_minutes BETWEEN 5 AND 240),
    active         boolean NOT NULL DEFAULT true,
    CONSTRAINT clinics_code_key UNIQUE (code)
);

-- Weekly availability: practitioner P works in clinic C on weekday D
-- (ISO 1 = Monday ... 7 = Sunday) from start to end, local time of the
-- hospital, between valid_from and valid_to.
CREATE TABLE availability_rules (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    practitioner_id  uuid NOT NULL REFERENCES practitioners (id),
    clinic_id        uuid NOT NULL REFERENCES clinics (id),
    weekday          integer NOT NULL CHECK (weekday BETWEEN 1 AND 7),
    start_time       time NOT NULL,
    end_time         time NOT NULL,
    valid_from       date NOT NULL DEFAULT current_date,
    valid_to         date,
    CHECK (end_time > start_time),
    CHECK (valid_to IS NULL OR valid_to >= valid_from)
);
CREATE INDEX availability_rules_practitioner_idx ON availability_rules (practitioner_id);

-- Exceptions remove availability: a practitioner's leave, or, with no
-- practitioner, a hospital-wide holiday.
CREATE TABLE availability_exceptions (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    practitioner_id  uuid REFERENCES practitioners (id),
    starts_at        timestamptz NOT NULL,
    ends_at          timestamptz NOT NULL,
    reason           text NOT NULL CHECK (length(reason) BETWEEN 1 AND 200),
    CHECK (ends_at > starts_at)
);
CREATE INDEX availability_exceptions_range_idx ON availability_exceptions USING gist (tstzrange(starts_at, ends_at));

CREATE TABLE appointments (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    patient_id       uuid NOT NULL REFERENCES patients (id),
    practitioner_id  uuid NOT NULL REFERENCES practitioners (id),
    clinic_id        uuid NOT NULL REFERENCES clinics (id),
    starts_at        timestamptz NOT NULL,
    ends_at          timestamptz NOT NULL,
    status           text NOT NULL DEFAULT 'booked'
                     CHECK (status IN ('booked', 'checked_in', 'completed', 'cancelled', 'no_show')),
    reason           text NOT NULL DEFAULT '' CHECK (length(reason) <= 500),
    cancel_reason    text NOT NULL DEFAULT '' CHECK (length(cancel_reason) <= 500),
    version          integer NOT NULL DEFAULT 1,
    created_by       uuid REFERENCES users (id),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_at > starts_at),
    CHECK (status <> 'cancelled' OR cancel_reason <> ''),
    -- Double booking is impossible: no two live appointments of one
    -- practitioner overlap. '[)' ranges let one end where the next begins.
    CONSTRAINT appointments_no_double_booking EXCLUDE USING gist (
        practitioner_id WITH =, tstzrange(starts_at, ends_at, '[)') WITH &&
    ) WHERE (status <> 'cancelled')
);
CREATE INDEX appointments_patient_idx ON appointments (patient_id, starts_at);
CREATE INDEX appointments_clinic_idx ON appointments (clinic_id, starts_at);

-- The walk-in queue of a department: checked-in patients waiting to be
-- called. Ticket numbers restart every day per department.
CREATE TABLE queue_counters (
    department_id  uuid NOT NULL REFERENCES departments (id),
    day            date NOT NULL,
    last_number    integer NOT NULL,
    PRIMARY KEY (department_id, day)
);

CREATE TABLE queue_entries (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    department_id   uuid NOT NULL REFERENCES departments (id),
    patient_id      uuid NOT NULL REFERENCES patients (id),
    appointment_id  uuid REFERENCES appointments (id),
    ticket          text NOT NULL,
    status          text NOT NULL DEFAULT 'waiting' CHECK (status IN ('waiting', 'called', 'done', 'left')),
    checked_in_at   timestamptz NOT NULL DEFAULT now(),
    called_at       timestamptz,
    called_by       uuid REFERENCES users (id),
    call_point      text NOT NULL DEFAULT '' CHECK (length(call_point) <= 60),
    finished_at     timestamptz,
    CHECK (status = 'waiting' OR called_at IS NOT NULL OR status = 'left')
);
CREATE INDEX queue_entries_waiting_idx ON queue_entries (department_id, checked_in_at) WHERE status = 'waiting';
-- A patient waits at most once per department at a time.
CREATE UNIQUE INDEX queue_entries_one_waiting_key ON queue_entries (department_id, patient_id) WHERE status IN ('waiting', 'called');
-- An appointment is checked in once.
CREATE UNIQUE INDEX queue_entries_appointment_key ON queue_entries (appointment_id) WHERE appointment_id IS NOT NULL;

-- Idempotency keys: the first response to a command, stored in the same
-- transaction as the command's work, so a client that retries with the
-- same key gets the same answer and never a second record.
CREATE TABLE idempotency_keys (
    actor_id     uuid NOT NULL REFERENCES users (id),
    key          text NOT NULL CHECK (length(key) BETWEEN 1 AND 200),
    fingerprint  bytea NOT NULL CHECK (length(fingerprint) = 32),
    response     jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (actor_id, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);

-- +goose Down
DROP TABLE idempotency_keys;
DROP TABLE queue_entries;
DROP TABLE queue_counters;
DROP TABLE appointments;
DROP TABLE availability_exceptions;
DROP TABLE availability_rules;
DROP TABLE clinics;
DROP TABLE practitioners;
DROP FUNCTION unmerge_patients(uuid, jsonb);
DROP FUNCTION merge_patients(uuid, uuid);
DROP TABLE patient_merges;
DROP TABLE patient_contacts;
DROP TABLE patient_identifiers;
ALTER TABLE patients DROP COLUMN phone_digits, DROP COLUMN search_name,
    DROP CONSTRAINT patients_not_self_merged, DROP CONSTRAINT patients_merge_consistent,
    DROP CONSTRAINT patients_deceased_consistent,
    DROP COLUMN merged_into, DROP COLUMN active, DROP COLUMN language, DROP COLUMN district,
    DROP COLUMN address_line2, DROP COLUMN mobile_phone, DROP COLUMN deceased_at, DROP COLUMN birth_sex,
    DROP COLUMN gender_identity, DROP COLUMN preferred_name, DROP COLUMN name_suffix, DROP COLUMN name_prefix;
DROP FUNCTION f_unaccent(text);
