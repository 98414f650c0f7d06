-- name: QueueLengths :many
-- For the Prometheus gauges (read every 15 s per replica, no actor): every
-- department's waiting patients and how long the first of them has waited
-- (the partial index on waiting entries answers it).
SELECT d.id AS department_id, d.code AS department_code, count(q.id)::int AS waiting,
       coalesce(extract(epoch FROM now() - min(q.checked_in_at)), 0)::float8 AS longest_wait_seconds
FROM departments d
LEFT JOIN queue_entries q ON q.department_id = d.id AND q.status = 'waiting'
GROUP BY d.id, d.code
ORDER BY d.code;

-- name: AppointmentCountByStatus :many
-- For the Prometheus gauges: appointments starting in [from_time, to_time)
-- by status. Going through the clinics lets the (clinic_id, starts_at) index
-- answer it.
SELECT a.status, count(*)::int AS appointments
FROM clinics c
JOIN appointments a ON a.clinic_id = c.id
WHERE a.starts_at >= sqlc.arg(from_time)::timestamptz AND a.starts_at < sqlc.arg(to_time)::timestamptz
GROUP BY a.status
ORDER BY a.status;
