-- A booking was one statement (AppointmentBook, a CTE of the slot check,
-- the appointment and the care relationship), but through PgBouncer's
-- transaction pooling every statement is unnamed, so PostgreSQL parsed,
-- analysed and planned that CTE at every booking: in a CPU profile of the
-- database during bookings, the CTE's planning alone was 7% and parsing and
-- analysis most of another 9%. As a PL/pgSQL function its statements keep
-- their plans per server connection (as slot_check and patient_search_near
-- do), and the call is a one-line statement.
--
-- It books only what the CTE booked: a slot the practitioner works, in an
-- active clinic, ending after it starts and at most 8 hours later, for an
-- active patient. No row: something was refused, and the caller asks which.
-- A double booking is the exclusion constraint's error, as before.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION appointment_book(p_patient uuid, p_practitioner uuid, p_clinic uuid, p_starts timestamptz,
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

-- +goose Down
DROP FUNCTION appointment_book(uuid, uuid, uuid, timestamptz, timestamptz, text, text, uuid);
