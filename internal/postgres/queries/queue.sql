-- name: QueueNextTicket :one
INSERT INTO queue_counters (department_id, day, last_number) VALUES ($1, $2, 1)
ON CONFLICT (department_id, day) DO UPDATE SET last_number = queue_counters.last_number + 1
RETURNING last_number;

-- name: QueueAdd :one
INSERT INTO queue_entries (department_id, patient_id, appointment_id, ticket) VALUES ($1, $2, $3, $4) RETURNING *;

-- name: QueueAddAt :one
-- An entry checked in at a given time, for generated data: entries added in
-- one transaction would otherwise share now(), and call-next, which takes
-- the earliest check-in, would pick among them by id.
INSERT INTO queue_entries (department_id, patient_id, appointment_id, ticket, checked_in_at) VALUES ($1, $2, $3, $4, $5) RETURNING *;

-- name: QueueCallNext :one
-- The longest-waiting patient, skipping entries another desk is calling at
-- this very moment; with the patient's name for the caller's confirmation.
WITH called AS (
    UPDATE queue_entries SET status = 'called', called_at = now(), called_by = sqlc.arg(called_by), call_point = sqlc.arg(call_point)
    WHERE id = (
        SELECT q.id FROM queue_entries q
        WHERE q.department_id = sqlc.arg(department_id) AND q.status = 'waiting'
        ORDER BY q.checked_in_at, q.id
        FOR UPDATE SKIP LOCKED
        LIMIT 1)
    RETURNING *)
SELECT c.*, p.family_name, p.given_names, p.mrn
FROM called c JOIN patients p ON p.id = c.patient_id;

-- name: QueueFinish :one
UPDATE queue_entries SET status = $2, finished_at = now()
WHERE id = $1 AND status IN ('waiting', 'called') RETURNING *;

-- name: QueueBoard :many
-- Today's open entries of a department, in order, and whether the (scoped)
-- reader may see each patient.
SELECT q.*, p.family_name, p.given_names, p.mrn,
       (sqlc.narg(scope_user)::uuid IS NULL
        OR patient_in_scope(q.patient_id, sqlc.narg(scope_user)::uuid, sqlc.arg(scope_wards)::uuid[], sqlc.narg(scope_department)::uuid))::bool AS visible
FROM queue_entries q JOIN patients p ON p.id = q.patient_id
WHERE q.department_id = sqlc.arg(department_id) AND (q.status IN ('waiting', 'called') OR q.finished_at > now() - interval '15 minutes')
ORDER BY CASE q.status WHEN 'called' THEN 0 WHEN 'waiting' THEN 1 ELSE 2 END, q.checked_in_at
LIMIT 200;

-- name: QueueGet :one
SELECT * FROM queue_entries WHERE id = $1;
