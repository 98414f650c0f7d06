-- name: DepartmentList :many
SELECT * FROM departments ORDER BY name;

-- name: DepartmentCreate :one
INSERT INTO departments (code, name, kind) VALUES ($1, $2, $3) RETURNING *;

-- name: WardCreate :one
INSERT INTO wards (department_id, code, name, specialty, sex_restriction, floor)
VALUES ($1, $2, $3, $4, $5, $6) RETURNING *;

-- name: RoomCreate :one
INSERT INTO rooms (ward_id, code) VALUES ($1, $2) RETURNING *;

-- name: BedCreate :one
INSERT INTO beds (room_id, code, bed_type, status) VALUES ($1, $2, $3, $4) RETURNING *;

-- name: WardList :many
-- Every ward with its bed counts by status, for the dashboard and the bed board.
SELECT w.id, w.code, w.name, w.specialty, w.sex_restriction, w.floor,
       d.id AS department_id, d.name AS department_name,
       count(b.id)::int AS beds_total,
       (count(b.id) FILTER (WHERE b.status = 'available'))::int AS beds_available,
       (count(b.id) FILTER (WHERE b.status = 'occupied'))::int AS beds_occupied,
       (count(b.id) FILTER (WHERE b.status = 'reserved'))::int AS beds_reserved,
       (count(b.id) FILTER (WHERE b.status = 'cleaning'))::int AS beds_cleaning,
       (count(b.id) FILTER (WHERE b.status = 'out_of_service'))::int AS beds_out_of_service
FROM wards w
JOIN departments d ON d.id = w.department_id
LEFT JOIN rooms r ON r.ward_id = w.id
LEFT JOIN beds b ON b.room_id = r.id
GROUP BY w.id, d.id
ORDER BY w.name;

-- name: WardGet :one
SELECT w.*, d.name AS department_name
FROM wards w JOIN departments d ON d.id = w.department_id
WHERE w.id = $1;

-- name: BedListByWard :many
SELECT b.id, b.code, b.bed_type, b.status, b.version, b.updated_at, r.id AS room_id, r.code AS room_code
FROM beds b JOIN rooms r ON r.id = b.room_id
WHERE r.ward_id = $1
ORDER BY r.code, b.code;

-- name: DepartmentRename :exec
UPDATE departments SET name = $2 WHERE id = $1;
