-- name: CareAssign :one
INSERT INTO care_assignments (patient_id, ward_id, department_id, user_id, reason)
VALUES ($1, $2, $3, $4, $5) RETURNING *;

-- name: CareEnd :exec
UPDATE care_assignments SET ended_at = now() WHERE id = $1 AND ended_at IS NULL;

-- name: PatientInScope :one
SELECT patient_in_scope(sqlc.arg(patient_id)::uuid, sqlc.arg(user_id)::uuid, sqlc.arg(ward_ids)::uuid[],
                        sqlc.narg(department_id)::uuid)::bool AS in_scope;

-- name: EmergencyGrant :one
INSERT INTO emergency_access (user_id, patient_id, reason, expires_at)
VALUES ($1, $2, $3, $4) RETURNING *;

-- name: EmergencyList :many
SELECT ea.*, u.username, u.display_name, u.role, p.mrn
FROM emergency_access ea
JOIN users u ON u.id = ea.user_id
JOIN patients p ON p.id = ea.patient_id
WHERE (sqlc.narg(unreviewed)::bool IS NULL OR (ea.reviewed_at IS NULL) = sqlc.narg(unreviewed)::bool)
  AND (sqlc.narg(before)::timestamptz IS NULL OR ea.granted_at < sqlc.narg(before)::timestamptz)
ORDER BY ea.granted_at DESC
LIMIT sqlc.arg(lim);

-- name: EmergencyReview :one
UPDATE emergency_access SET reviewed_at = now(), reviewed_by = $2, review_note = $3
WHERE id = $1 AND reviewed_at IS NULL
RETURNING *;
