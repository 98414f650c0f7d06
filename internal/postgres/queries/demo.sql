-- Queries only the demo loader uses: it writes a month of history, so it
-- sets the times the application itself never sets.

-- name: DemoBeds :many
SELECT b.id, b.bed_type, r.ward_id, w.code AS ward_code
FROM beds b JOIN rooms r ON r.id = b.room_id JOIN wards w ON w.id = r.ward_id
WHERE b.status = 'available'
ORDER BY b.code;

-- name: DemoAdmit :one
INSERT INTO admissions (patient_id, bed_id, ward_id, source, reason, expected_days, admitted_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
RETURNING id;

-- name: DemoDischarge :exec
UPDATE admissions SET status = 'discharged', disposition = $2, ended_at = $3, discharge_summary = $4
WHERE id = $1;

-- name: SeedBedCopy :copyfrom
INSERT INTO beds (room_id, code, bed_type, status) VALUES ($1, $2, $3, $4);

-- name: SeedAppointmentCopy :copyfrom
INSERT INTO appointments (patient_id, practitioner_id, clinic_id, starts_at, ends_at, status, reason, cancel_reason)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8);

-- name: SeedPatientIDs :many
-- Patients in MRN order (registration order: deterministic for a seed).
SELECT id FROM patients WHERE active ORDER BY mrn LIMIT sqlc.arg(lim);
