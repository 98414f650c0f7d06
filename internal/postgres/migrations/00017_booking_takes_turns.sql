-- Bookings of one practitioner take turns. The double-booking exclusion
-- constraint (migration 00003) is checked after the new row is in the
-- index: two transactions inserting overlapping appointments at once each
-- see the other's row and wait for the other to end, a deadlock that
-- PostgreSQL breaks after deadlock_timeout (1 s) by aborting one, which
-- the backend then retries. A hundred requests for one slot at once (a
-- clinic's bookings opening) made chains of these: seconds of waiting,
-- requests that ran out of time (503) instead of answering 409, and the
-- flaky TestConcurrentBookingOfOneSlot. A transaction-scoped advisory lock
-- per practitioner, taken just before the insert, makes the second booking
-- wait for the first to commit and then fail the constraint at once. The
-- key is the two-int form (7310019, a hash of the practitioner id): its
-- space does not overlap the single-key locks of the audit sealer and
-- partitions; two practitioners sharing a hash only take turns. Rescheduling
-- takes the same lock (AppointmentLockPractitioner).

-- +goose Up
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION appointment_book(p_patient uuid, p_practitioner uuid, p_clinic uuid, p_starts timestamptz,
                                 p_ends timestamptz, p_tz text, p_reason text, p_by uuid)
RETURNS SETOF appointments
LANGUAGE plpgsql AS $$
DECLARE
    s record;
    a appointments;
BEGIN
    SELECT * INTO s FROM slot_check(p_practitioner, p_clinic, p_starts, p_ends, p_tz);
    IF NOT (s.practitioner_found AND s.clinic_found AND s.available
            AND s.ends_at > p_starts AND s.ends_at <= p_starts + interval '8 hours')
       OR NOT EXISTS (SELECT 1 FROM patients p WHERE p.id = p_patient AND p.active) THEN
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(7310019, hashtext(p_practitioner::text));
    INSERT INTO appointments (patient_id, practitioner_id, clinic_id, starts_at, ends_at, reason, created_by)
    VALUES (p_patient, p_practitioner, p_clinic, p_starts, s.ends_at, p_reason, p_by)
    RETURNING * INTO a;
    IF s.practitioner_user_id IS NOT NULL THEN
        INSERT INTO care_assignments (patient_id, user_id, reason) VALUES (p_patient, s.practitioner_user_id, 'appointment');
    END IF;
    RETURN NEXT a;
END;
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION appointment_book(p_patient uuid, p_practitioner uuid, p_clinic uuid, p_starts timestamptz,
                                 p_ends timestamptz, p_tz text, p_reason text, p_by uuid)
RETURNS SETOF appointments
LANGUAGE plpgsql AS $$
DECLARE
    s record;
    a appointments;
BEGIN
    SELECT * INTO s FROM slot_check(p_practitioner, p_clinic, p_starts, p_ends, p_tz);
    IF NOT (s.practitioner_found AND s.clinic_found AND s.available
            AND s.ends_at > p_starts AND s.ends_at <= p_starts + interval '8 hours')
       OR NOT EXISTS (SELECT 1 FROM patients p WHERE p.id = p_patient AND p.active) THEN
        RETURN;
    END IF;
    INSERT INTO appointments (patient_id, practitioner_id, clinic_id, starts_at, ends_at, reason, created_by)
    VALUES (p_patient, p_practitioner, p_clinic, p_starts, s.ends_at, p_reason, p_by)
    RETURNING * INTO a;
    IF s.practitioner_user_id IS NOT NULL THEN
        INSERT INTO care_assignments (patient_id, user_id, reason) VALUES (p_patient, s.practitioner_user_id, 'appointment');
    END IF;
    RETURN NEXT a;
END;
$$;
-- +goose StatementEnd
