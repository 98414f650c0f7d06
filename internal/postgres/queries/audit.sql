-- name: AuditInsert :exec
INSERT INTO audit_events (actor_id, action, entity_type, entity_id, patient_id, request_id, details)
VALUES ($1, $2, $3, $4, $5, $6, $7);

-- name: AuditCountForPatient :one
SELECT count(*) FROM audit_events WHERE patient_id = $1 AND action = $2;
