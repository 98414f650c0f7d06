-- Inpatient care: admissions, transfers and discharges as state changes
-- whose invariants live here: one active admission per patient, one
-- patient per bed, admission only to an available bed, every change a row
-- of the admission's history, and bed states that follow the admissions.

-- +goose Up
CREATE TABLE admissions (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    patient_id        uuid NOT NULL REFERENCES patients (id),
    bed_id            uuid NOT NULL REFERENCES beds (id),
    ward_id           uuid NOT NULL REFERENCES wards (id),
    source            text NOT NULL CHECK (source IN ('appointment', 'emergency', 'direct')),
    appointment_id    uuid REFERENCES appointments (id),
    admitting_user_id uuid REFERENCES users (id),
    reason            text NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    expected_days     integer CHECK (expected_days BETWEEN 0 AND 365),
    status            text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'discharged', 'cancelled')),
    admitted_at       timestamptz NOT NULL DEFAULT now(),
    ended_at          timestamptz,
    disposition       text CHECK (disposition IN ('home', 'transfer_out', 'deceased', 'against_advice')),
    discharge_summary text NOT NULL DEFAULT '' CHECK (length(discharge_summary) <= 20000),
    cancel_reason     text NOT NULL DEFAULT '' CHECK (length(cancel_reason) <= 500),
    version           integer NOT NULL DEFAULT 1,
    created_by        uuid REFERENCES users (id),
    CHECK ((status = 'active') = (ended_at IS NULL)),
    CHECK ((status = 'discharged') = (disposition IS NOT NULL)),
    CHECK (status <> 'cancelled' OR cancel_reason <> ''),
    CHECK (source <> 'appointment' OR appointment_id IS NOT NULL),
    CHECK (ended_at IS NULL OR ended_at >= admitted_at)
);
-- One active admission per patient; one patient per bed.
CREATE UNIQUE INDEX admissions_one_per_patient_key ON admissions (patient_id) WHERE status = 'active';
CREATE UNIQUE INDEX admissions_one_per_bed_key ON admissions (bed_id) WHERE status = 'active';
CREATE INDEX admissions_ward_idx ON admissions (ward_id, status);
CREATE INDEX admissions_admitted_idx ON admissions (admitted_at);
CREATE INDEX admissions_ended_idx ON admissions (ended_at) WHERE ended_at IS NOT NULL;

-- The history of an admission, written by the trigger below, never by the
-- application: a change without its row cannot happen.
CREATE TABLE admission_events (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    admission_id  uuid NOT NULL REFERENCES admissions (id),
    event         text NOT NULL CHECK (event IN ('admitted', 'transferred', 'discharged', 'cancelled')),
    from_bed_id   uuid REFERENCES beds (id),
    to_bed_id     uuid REFERENCES beds (id),
    occurred_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor_id      uuid,
    details       jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX admission_events_admission_idx ON admission_events (admission_id, id);

-- Where each admission was, and when: the basis of census and occupancy.
CREATE TABLE bed_stays (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    admission_id  uuid NOT NULL REFERENCES admissions (id),
    bed_id        uuid NOT NULL REFERENCES beds (id),
    ward_id       uuid NOT NULL REFERENCES wards (id),
    started_at    timestamptz NOT NULL,
    ended_at      timestamptz,
    CHECK (ended_at IS NULL OR ended_at >= started_at)
);
CREATE UNIQUE INDEX bed_stays_open_key ON bed_stays (admission_id) WHERE ended_at IS NULL;
CREATE INDEX bed_stays_ward_idx ON bed_stays (ward_id, started_at);
CREATE INDEX bed_stays_ended_idx ON bed_stays (ended_at);

-- admissions_apply keeps beds, stays and history in step with every
-- admission change (after the row is written, so the history can refer to
-- it; an exception still undoes the whole statement). The acting user is read from the transaction setting
-- hospital.actor_id (set_config(..., true): transaction-scoped, safe with
-- PgBouncer's transaction pooling).
-- +goose StatementBegin
CREATE FUNCTION admissions_apply() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    actor uuid := nullif(current_setting('hospital.actor_id', true), '')::uuid;
    bed_ward uuid;
    now_ts timestamptz := clock_timestamp();
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.status <> 'active' THEN
            RAISE EXCEPTION 'an admission starts active' USING ERRCODE = '23514';
        END IF;
        UPDATE beds SET status = 'occupied', version = version + 1, updated_at = now_ts
         WHERE id = NEW.bed_id AND status = 'available'
         RETURNING (SELECT r.ward_id FROM rooms r WHERE r.id = beds.room_id) INTO bed_ward;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'bed % is not available', NEW.bed_id USING ERRCODE = '23514', CONSTRAINT = 'admissions_bed_available';
        END IF;
        IF bed_ward <> NEW.ward_id THEN
            RAISE EXCEPTION 'bed is not on ward %', NEW.ward_id USING ERRCODE = '23514', CONSTRAINT = 'admissions_bed_ward';
        END IF;
        INSERT INTO bed_stays (admission_id, bed_id, ward_id, started_at) VALUES (NEW.id, NEW.bed_id, NEW.ward_id, NEW.admitted_at);
        INSERT INTO admission_events (admission_id, event, to_bed_id, actor_id, details)
        VALUES (NEW.id, 'admitted', NEW.bed_id, actor, jsonb_build_object('source', NEW.source, 'ward_id', NEW.ward_id));
        RETURN NEW;
    END IF;

    IF NEW.patient_id <> OLD.patient_id AND NEW.status = OLD.status AND NEW.bed_id = OLD.bed_id THEN
        RETURN NEW; -- a patient merge (or its undo) moves the admission; nothing else changes
    END IF;
    IF OLD.status <> 'active' THEN
        RAISE EXCEPTION 'admission % has ended', OLD.id USING ERRCODE = '23514', CONSTRAINT = 'admissions_ended';
    END IF;
    IF NEW.status = 'active' AND NEW.bed_id <> OLD.bed_id THEN
        -- Transfer: the new bed must be available; the old one goes to cleaning.
        UPDATE beds SET status = 'occupied', version = version + 1, updated_at = now_ts
         WHERE id = NEW.bed_id AND status = 'available'
         RETURNING (SELECT r.ward_id FROM rooms r WHERE r.id = beds.room_id) INTO bed_ward;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'bed % is not available', NEW.bed_id USING ERRCODE = '23514', CONSTRAINT = 'admissions_bed_available';
        END IF;
        IF bed_ward <> NEW.ward_id THEN
            RAISE EXCEPTION 'bed is not on ward %', NEW.ward_id USING ERRCODE = '23514', CONSTRAINT = 'admissions_bed_ward';
        END IF;
        UPDATE beds SET status = 'cleaning', version = version + 1, updated_at = now_ts WHERE id = OLD.bed_id;
        UPDATE bed_stays SET ended_at = now_ts WHERE admission_id = OLD.id AND ended_at IS NULL;
        INSERT INTO bed_stays (admission_id, bed_id, ward_id, started_at) VALUES (NEW.id, NEW.bed_id, NEW.ward_id, now_ts);
        INSERT INTO admission_events (admission_id, event, from_bed_id, to_bed_id, actor_id, details)
        VALUES (NEW.id, 'transferred', OLD.bed_id, NEW.bed_id, actor,
                jsonb_build_object('from_ward_id', OLD.ward_id, 'to_ward_id', NEW.ward_id));
    ELSIF NEW.status IN ('discharged', 'cancelled') THEN
        IF NEW.bed_id <> OLD.bed_id THEN
            RAISE EXCEPTION 'an ending admission cannot move' USING ERRCODE = '23514';
        END IF;
        -- A discharged patient's bed needs cleaning; one entered in error was
        -- never really used.
        UPDATE beds SET status = CASE WHEN NEW.status = 'discharged' THEN 'cleaning' ELSE 'available' END,
                        version = version + 1, updated_at = now_ts
         WHERE id = OLD.bed_id;
        UPDATE bed_stays SET ended_at = NEW.ended_at WHERE admission_id = OLD.id AND ended_at IS NULL;
        INSERT INTO admission_events (admission_id, event, from_bed_id, actor_id, details)
        VALUES (NEW.id, CASE WHEN NEW.status = 'discharged' THEN 'discharged' ELSE 'cancelled' END, OLD.bed_id, actor,
                jsonb_build_object('disposition', NEW.disposition));
    END IF;
    RETURN NEW;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER admissions_apply_insert AFTER INSERT ON admissions FOR EACH ROW EXECUTE FUNCTION admissions_apply();
CREATE TRIGGER admissions_apply_update AFTER UPDATE ON admissions FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.bed_id IS DISTINCT FROM NEW.bed_id OR OLD.patient_id IS DISTINCT FROM NEW.patient_id)
    EXECUTE FUNCTION admissions_apply();

-- A bed with a patient is occupied, and only such a bed: housekeeping and
-- maintenance cannot change an occupied bed, and nobody can mark a bed
-- occupied by hand.
-- +goose StatementBegin
CREATE FUNCTION beds_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    has_patient boolean := EXISTS (SELECT 1 FROM admissions a WHERE a.bed_id = NEW.id AND a.status = 'active');
BEGIN
    -- Changes made by admissions_apply (nested, depth 2) are the admissions' own.
    IF pg_trigger_depth() < 2 THEN
        IF NEW.status = 'occupied' AND NOT has_patient THEN
            RAISE EXCEPTION 'bed % has no patient to be occupied', NEW.id USING ERRCODE = '23514', CONSTRAINT = 'beds_occupied_by_admission';
        END IF;
        IF OLD.status = 'occupied' AND has_patient THEN
            RAISE EXCEPTION 'bed % has a patient', NEW.id USING ERRCODE = '23514', CONSTRAINT = 'beds_occupied_by_admission';
        END IF;
    END IF;
    RETURN NEW;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER beds_guard BEFORE UPDATE OF status ON beds FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION beds_guard();

-- The history is append-only for the application.
REVOKE UPDATE, DELETE, TRUNCATE ON admission_events FROM hospital_app;

-- +goose Down
DROP TRIGGER beds_guard ON beds;
DROP FUNCTION beds_guard();
DROP TRIGGER admissions_apply_update ON admissions;
DROP TRIGGER admissions_apply_insert ON admissions;
DROP FUNCTION admissions_apply();
DROP TABLE bed_stays;
DROP TABLE admission_events;
DROP TABLE admissions;
