-- name: PractitionerCreate :one
INSERT INTO practitioners (user_id, display_name, department_id, specialty) VALUES ($1, $2, $3, $4) RETURNING *;

-- name: PractitionerList :many
SELECT p.*, d.name AS department_name
FROM practitioners p JOIN departments d ON d.id = p.department_id
WHERE p.active AND (sqlc.narg(department_id)::uuid IS NULL OR p.department_id = sqlc.narg(department_id)::uuid)
ORDER BY p.display_name;

-- name: ClinicCreate :one
INSERT INTO clinics (department_id, code, name, location, slot_minutes) VALUES ($1, $2, $3, $4, $5) RETURNING *;

-- name: ClinicList :many
SELECT c.*, d.name AS department_name
FROM clinics c JOIN departments d ON d.id = c.department_id
WHERE c.active ORDER BY c.name;

-- name: ClinicGet :one
SELECT * FROM clinics WHERE id = $1;

-- name: RuleCreate :one
INSERT INTO availability_rules (practitioner_id, clinic_id, weekday, start_time, end_time, valid_from, valid_to)
VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *;

-- name: RuleDelete :execrows
DELETE FROM availability_rules WHERE id = $1 AND practitioner_id = $2;

-- name: RulesForPractitioner :many
SELECT * FROM availability_rules WHERE practitioner_id = $1 ORDER BY weekday, start_time;

-- name: RulesInRange :many
-- Rules of the practitioners (all when NULL) valid at some point of [from, to].
SELECT r.* FROM availability_rules r
JOIN practitioners p ON p.id = r.practitioner_id AND p.active
JOIN clinics c ON c.id = r.clinic_id AND c.active
WHERE (sqlc.narg(practitioner_id)::uuid IS NULL OR r.practitioner_id = sqlc.narg(practitioner_id)::uuid)
  AND (sqlc.narg(clinic_id)::uuid IS NULL OR r.clinic_id = sqlc.narg(clinic_id)::uuid)
  AND r.valid_from <= sqlc.arg(to_date)::date
  AND (r.valid_to IS NULL OR r.valid_to >= sqlc.arg(from_date)::date)
ORDER BY r.practitioner_id, r.weekday, r.start_time;

-- name: ExceptionCreate :one
INSERT INTO availability_exceptions (practitioner_id, starts_at, ends_at, reason) VALUES ($1, $2, $3, $4) RETURNING *;

-- name: ExceptionDelete :execrows
DELETE FROM availability_exceptions WHERE id = $1;

-- name: SlotCheck :one
-- What booking or moving an appointment needs, in one round trip: whether
-- the practitioner and the clinic exist and are active, the practitioner's
-- user (who will care for the patient), the appointment's end (the clinic's
-- slot length when none is given), and whether [starts_at, end) lies within
-- one of the practitioner's weekly hours in the clinic, read in the
-- hospital's time zone, and is not blocked by an exception (the
-- practitioner's or hospital-wide). The query is the function slot_check
-- (migration 00009), so that its plan is kept per connection.
SELECT s.practitioner_found::boolean AS practitioner_found, s.clinic_found::boolean AS clinic_found,
       coalesce(s.practitioner_user_id::uuid, '00000000-0000-0000-0000-000000000000'::uuid)::uuid AS practitioner_user_id, -- nil: no user
       s.ends_at::timestamptz AS ends_at, s.available::boolean AS available
FROM slot_check(sqlc.arg(practitioner_id)::uuid, sqlc.arg(clinic_id)::uuid, sqlc.arg(starts_at)::timestamptz,
                sqlc.narg(ends_at)::timestamptz, sqlc.arg(tz)::text) s;

-- name: ExceptionsInRange :many
SELECT * FROM availability_exceptions
WHERE tstzrange(starts_at, ends_at) && tstzrange(sqlc.arg(from_time)::timestamptz, sqlc.arg(to_time)::timestamptz)
  AND (practitioner_id IS NULL OR sqlc.narg(practitioner_id)::uuid IS NULL OR practitioner_id = sqlc.narg(practitioner_id)::uuid)
ORDER BY starts_at;

-- name: AppointmentCreate :one
INSERT INTO appointments (patient_id, practitioner_id, clinic_id, starts_at, ends_at, reason, created_by)
VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *;

-- name: AppointmentBook :one
-- A booking in one round trip: appointment_book (migration 00015) checks
-- the slot as SlotCheck does and the patient active, inserts the
-- appointment (its end the clinic's slot length when none is given, at most
-- 8 hours) and puts the practitioner's user in the patient's care; a
-- PL/pgSQL function, so that its statements keep their plans per
-- connection. No row: something was refused, and the caller asks SlotCheck
-- and the patient which (the slow path, for refusals only). A double
-- booking is the exclusion constraint's error.
SELECT * FROM appointment_book(sqlc.arg(patient_id)::uuid, sqlc.arg(practitioner_id)::uuid, sqlc.arg(clinic_id)::uuid,
                               sqlc.arg(starts_at)::timestamptz, sqlc.narg(ends_at)::timestamptz, sqlc.arg(tz)::text,
                               sqlc.arg(reason)::text, sqlc.narg(created_by)::uuid);

-- name: AppointmentGet :one
-- One appointment with what its page shows: the patient's name and MRN,
-- the practitioner, and the clinic with its location and department.
SELECT sqlc.embed(a), p.mrn, p.family_name, p.given_names, pr.display_name AS practitioner_name, c.name AS clinic_name,
       c.location AS clinic_location, c.department_id, d.name AS department_name
FROM appointments a
JOIN patients p ON p.id = a.patient_id
JOIN practitioners pr ON pr.id = a.practitioner_id
JOIN clinics c ON c.id = a.clinic_id
JOIN departments d ON d.id = c.department_id
WHERE a.id = $1;

-- name: AppointmentGetForUpdate :one
SELECT * FROM appointments WHERE id = $1 FOR UPDATE;

-- name: AppointmentLockPractitioner :exec
-- The lock appointment_book takes before inserting (migration 00017): a
-- reschedule takes it for the practitioner it moves to, so that two
-- overlapping changes take turns instead of deadlocking in the exclusion
-- constraint.
SELECT pg_advisory_xact_lock(7310019, hashtext(sqlc.arg(practitioner_id)::uuid::text));

-- name: AppointmentReschedule :one
UPDATE appointments SET starts_at = $2, ends_at = $3, practitioner_id = $4, clinic_id = $5,
    version = version + 1, updated_at = now()
WHERE id = $1 RETURNING *;

-- name: AppointmentSetStatus :one
UPDATE appointments SET status = $2, cancel_reason = $3, version = version + 1, updated_at = now()
WHERE id = $1 RETURNING *;

-- name: AppointmentsBooked :many
-- Live appointments overlapping [from, to), to subtract from availability.
SELECT practitioner_id, starts_at, ends_at FROM appointments
WHERE status <> 'cancelled'
  AND tstzrange(starts_at, ends_at, '[)') && tstzrange(sqlc.arg(from_time)::timestamptz, sqlc.arg(to_time)::timestamptz, '[)')
  AND (sqlc.narg(practitioner_id)::uuid IS NULL OR practitioner_id = sqlc.narg(practitioner_id)::uuid);

-- name: AppointmentList :many
-- The calendar: appointments in [from, to) of a practitioner, a clinic or a
-- patient, with the patient's name and whether the (scoped) actor may see it.
SELECT a.*, p.mrn, p.family_name, p.given_names, pr.display_name AS practitioner_name, c.name AS clinic_name,
       (sqlc.narg(scope_user)::uuid IS NULL
        OR patient_in_scope(a.patient_id, sqlc.narg(scope_user)::uuid, sqlc.arg(scope_wards)::uuid[], sqlc.narg(scope_department)::uuid))::bool AS visible
FROM appointments a
JOIN patients p ON p.id = a.patient_id
JOIN practitioners pr ON pr.id = a.practitioner_id
JOIN clinics c ON c.id = a.clinic_id
WHERE a.starts_at < sqlc.arg(to_time)::timestamptz AND a.ends_at > sqlc.arg(from_time)::timestamptz
  -- appointments last at most a day (appointments_at_most_a_day): bounds the index range
  AND a.starts_at > sqlc.arg(from_time)::timestamptz - interval '24 hours'
  AND (sqlc.narg(practitioner_id)::uuid IS NULL OR a.practitioner_id = sqlc.narg(practitioner_id)::uuid)
  AND (sqlc.narg(clinic_id)::uuid IS NULL OR a.clinic_id = sqlc.narg(clinic_id)::uuid)
  AND (sqlc.narg(patient_id)::uuid IS NULL OR a.patient_id = sqlc.narg(patient_id)::uuid)
  AND (sqlc.narg(status)::text IS NULL OR a.status = sqlc.narg(status)::text)
ORDER BY a.starts_at, pr.display_name
LIMIT 1000;

-- name: AppointmentOverlaps :one
-- Counts overlapping live appointments per practitioner (tests check the
-- exclusion constraint holds).
SELECT count(*) FROM appointments a JOIN appointments b
  ON a.practitioner_id = b.practitioner_id AND a.id < b.id
 AND a.status <> 'cancelled' AND b.status <> 'cancelled'
 AND tstzrange(a.starts_at, a.ends_at, '[)') && tstzrange(b.starts_at, b.ends_at, '[)');
