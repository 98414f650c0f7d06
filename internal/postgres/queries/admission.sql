-- name: AdmissionCreate :one
INSERT INTO admissions (patient_id, bed_id, ward_id, source, appointment_id, admitting_user_id, reason, expected_days, created_by)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
RETURNING *;

-- name: AdmissionAdmit :one
-- An admission in one statement (one round trip): the patient active, the
-- bed's ward, the admission (its trigger admissions_apply occupies the bed
-- and writes the stay and the history, or refuses), and the care of the
-- ward and of the admitting clinician. No row: the patient or the bed was
-- not found or the patient's record was merged, and the caller asks which.
WITH b AS (
    SELECT bd.id, bd.code, r.ward_id FROM beds bd JOIN rooms r ON r.id = bd.room_id WHERE bd.id = sqlc.arg(bed_id)::uuid
), a AS (
    INSERT INTO admissions (patient_id, bed_id, ward_id, source, appointment_id, admitting_user_id, reason, expected_days, created_by)
    SELECT sqlc.arg(patient_id)::uuid, b.id, b.ward_id, sqlc.arg(source)::text, sqlc.narg(appointment_id)::uuid,
           sqlc.narg(admitting_user_id)::uuid, sqlc.arg(reason)::text, sqlc.narg(expected_days)::int, sqlc.narg(created_by)::uuid
    FROM b
    WHERE EXISTS (SELECT 1 FROM patients p WHERE p.id = sqlc.arg(patient_id)::uuid AND p.active)
    RETURNING *
), c AS (
    INSERT INTO care_assignments (patient_id, ward_id, user_id, reason)
    SELECT a.patient_id, a.ward_id, NULL::uuid, 'admission' FROM a
    UNION ALL
    SELECT a.patient_id, NULL::uuid, a.admitting_user_id, 'admitting clinician' FROM a WHERE a.admitting_user_id IS NOT NULL
)
SELECT a.id, a.patient_id, a.bed_id, a.ward_id, a.source, a.appointment_id, a.admitting_user_id, a.reason, a.expected_days,
       a.status, a.admitted_at, a.ended_at, a.disposition, a.discharge_summary, a.cancel_reason, a.version, a.created_by,
       b.code AS bed_code
FROM a, b;

-- name: AdmissionGet :one
SELECT * FROM admissions WHERE id = $1;

-- name: AdmissionDetail :one
-- An admission with the names a page shows.
SELECT sqlc.embed(a), p.family_name, p.given_names, p.mrn, b.code AS bed_code, w.name AS ward_name
FROM admissions a
JOIN patients p ON p.id = a.patient_id
JOIN beds b ON b.id = a.bed_id
JOIN wards w ON w.id = a.ward_id
WHERE a.id = $1;

-- name: AdmissionsForPatientDetail :many
SELECT sqlc.embed(a), b.code AS bed_code, w.name AS ward_name
FROM admissions a
JOIN beds b ON b.id = a.bed_id
JOIN wards w ON w.id = a.ward_id
WHERE a.patient_id = $1 ORDER BY a.admitted_at DESC LIMIT 100;

-- name: AdmissionGetForUpdate :one
SELECT * FROM admissions WHERE id = $1 FOR UPDATE;

-- name: AdmissionTransfer :one
UPDATE admissions SET bed_id = $2, ward_id = $3, version = version + 1 WHERE id = $1 RETURNING *;

-- name: AdmissionDischarge :one
UPDATE admissions SET status = 'discharged', ended_at = now(), disposition = $2, discharge_summary = $3, version = version + 1
WHERE id = $1 RETURNING *;

-- name: AdmissionCancel :one
UPDATE admissions SET status = 'cancelled', ended_at = now(), cancel_reason = $2, version = version + 1
WHERE id = $1 RETURNING *;

-- name: AdmissionEvents :many
-- The history with the beds and wards named, as a page shows them.
SELECT e.*, coalesce(u.display_name, '') AS actor_name,
       coalesce(fb.code, '') AS from_bed_code, coalesce(fw.name, '') AS from_ward_name,
       coalesce(tb.code, '') AS to_bed_code, coalesce(tw.name, '') AS to_ward_name
FROM admission_events e
LEFT JOIN users u ON u.id = e.actor_id
LEFT JOIN beds fb ON fb.id = e.from_bed_id
LEFT JOIN rooms fr ON fr.id = fb.room_id
LEFT JOIN wards fw ON fw.id = fr.ward_id
LEFT JOIN beds tb ON tb.id = e.to_bed_id
LEFT JOIN rooms tr ON tr.id = tb.room_id
LEFT JOIN wards tw ON tw.id = tr.ward_id
WHERE e.admission_id = $1 ORDER BY e.id;

-- name: AdmissionActiveForPatient :one
SELECT * FROM admissions WHERE patient_id = $1 AND status = 'active';

-- name: AdmissionCareAssignment :one
-- The open care relationship an admission gave its ward.
SELECT id FROM care_assignments
WHERE patient_id = $1 AND ward_id = $2 AND reason = 'admission' AND ended_at IS NULL
ORDER BY started_at DESC LIMIT 1;

-- name: BedGet :one
SELECT b.*, r.ward_id, r.code AS room_code FROM beds b JOIN rooms r ON r.id = b.room_id WHERE b.id = $1;

-- name: BedSetStatus :one
-- A housekeeping or maintenance change, only from the expected state.
UPDATE beds SET status = sqlc.arg(to_status), version = version + 1, updated_at = now()
WHERE id = sqlc.arg(id) AND status = sqlc.arg(from_status)
RETURNING *;

-- name: BedCounts :many
-- Beds per ward and state: the bed board's counts, without its beds.
SELECT w.id AS ward_id, w.code AS ward_code, w.name AS ward_name, b.status, count(*)::int AS beds
FROM beds b
JOIN rooms r ON r.id = b.room_id
JOIN wards w ON w.id = r.ward_id
WHERE (sqlc.narg(ward_id)::uuid IS NULL OR w.id = sqlc.narg(ward_id)::uuid)
GROUP BY w.id, w.code, w.name, b.status
ORDER BY w.name, w.id;

-- name: BedBoard :many
-- Every bed (or those in one state) with its ward, room and, when
-- occupied, the admission and the patient, and whether the (scoped)
-- actor may see that patient.
SELECT b.id, b.code, b.bed_type, b.status, b.version, b.updated_at,
       r.id AS room_id, r.code AS room_code, w.id AS ward_id, w.code AS ward_code, w.name AS ward_name,
       a.id AS admission_id, a.admitted_at, a.expected_days,
       p.id AS patient_id, p.mrn, p.family_name, p.given_names, p.sex, p.birth_date,
       (a.id IS NOT NULL AND (sqlc.narg(scope_user)::uuid IS NULL
        OR patient_in_scope(a.patient_id, sqlc.narg(scope_user)::uuid, sqlc.arg(scope_wards)::uuid[], sqlc.narg(scope_department)::uuid)))::bool AS visible
FROM beds b
JOIN rooms r ON r.id = b.room_id
JOIN wards w ON w.id = r.ward_id
LEFT JOIN admissions a ON a.bed_id = b.id AND a.status = 'active'
LEFT JOIN patients p ON p.id = a.patient_id
WHERE (sqlc.narg(ward_id)::uuid IS NULL OR w.id = sqlc.narg(ward_id)::uuid)
  AND (sqlc.narg(status)::text IS NULL OR b.status = sqlc.narg(status)::text)
ORDER BY w.name, w.id, r.code, b.code;

-- name: CensusDaily :many
-- Per ward and local day in [from_day, to_day]: admissions, discharges,
-- patients present at the end of the day (midnight census; now, for
-- today), and occupied bed-seconds, from the stays (a transfer counts for
-- both wards). Each stay is expanded to the days it touches, so the cost
-- follows the bed-days of the period, not stays times days.
WITH bounds AS (
    SELECT (sqlc.arg(from_day)::date::timestamp AT TIME ZONE sqlc.arg(tz)::text) AS period_start,
           ((sqlc.arg(to_day)::date + 1)::timestamp AT TIME ZONE sqlc.arg(tz)::text) AS period_end
), wards_in AS (
    SELECT w.id, w.code, w.name,
           (SELECT count(*) FROM beds b JOIN rooms r ON r.id = b.room_id
             WHERE r.ward_id = w.id AND b.status <> 'out_of_service')::int AS beds
    FROM wards w
    WHERE sqlc.narg(ward_id)::uuid IS NULL OR w.id = sqlc.narg(ward_id)::uuid
), stays AS (
    SELECT s.ward_id, s.started_at, coalesce(s.ended_at, now()) AS until, s.ended_at,
           a.admitted_at, a.ended_at AS admission_ended, a.status
    FROM bed_stays s
    JOIN admissions a ON a.id = s.admission_id AND a.status <> 'cancelled'
    CROSS JOIN bounds
    WHERE s.ward_id IN (SELECT id FROM wards_in)
      AND s.started_at < bounds.period_end
      AND (s.ended_at IS NULL OR s.ended_at > bounds.period_start)
), per_day AS (
    SELECT x.ward_id, d.day,
           count(*) FILTER (WHERE x.admitted_at = x.started_at AND x.started_at >= d.day_start AND x.started_at < d.day_end) AS admissions,
           count(*) FILTER (WHERE x.status = 'discharged' AND x.ended_at = x.admission_ended
                             AND x.ended_at >= d.day_start AND x.ended_at < d.day_end) AS discharges,
           count(*) FILTER (WHERE x.started_at < d.day_end AND (x.ended_at IS NULL OR x.ended_at >= d.day_end)) AS census,
           sum(greatest(extract(epoch FROM least(x.until, d.day_end) - greatest(x.started_at, d.day_start)), 0)) AS occupied_seconds
    FROM stays x
    CROSS JOIN LATERAL (
        SELECT g::date AS day,
               (g::date::timestamp AT TIME ZONE sqlc.arg(tz)::text) AS day_start,
               ((g::date + 1)::timestamp AT TIME ZONE sqlc.arg(tz)::text) AS day_end
        FROM generate_series(greatest((x.started_at AT TIME ZONE sqlc.arg(tz)::text)::date, sqlc.arg(from_day)::date),
                             least((x.until AT TIME ZONE sqlc.arg(tz)::text)::date, sqlc.arg(to_day)::date),
                             interval '1 day') AS g
    ) d
    GROUP BY x.ward_id, d.day
)
SELECT w.id AS ward_id, w.code AS ward_code, w.name AS ward_name, w.beds, days.day::date AS day,
       coalesce(p.admissions, 0)::int AS admissions,
       coalesce(p.discharges, 0)::int AS discharges,
       coalesce(p.census, 0)::int AS census,
       coalesce(p.occupied_seconds, 0)::float8 AS occupied_seconds
FROM wards_in w
CROSS JOIN generate_series(sqlc.arg(from_day)::date, sqlc.arg(to_day)::date, interval '1 day') AS days (day)
LEFT JOIN per_day p ON p.ward_id = w.id AND p.day = days.day::date
ORDER BY w.name, days.day;

-- name: LengthOfStay :many
-- Average length of stay (days) of the admissions discharged in the period,
-- by the ward they left from.
SELECT s.ward_id, count(*)::int AS discharged,
       coalesce(avg(extract(epoch FROM a.ended_at - a.admitted_at)) / 86400, 0)::float8 AS average_days
FROM admissions a
JOIN bed_stays s ON s.admission_id = a.id AND s.ended_at = a.ended_at
WHERE a.status = 'discharged' AND a.ended_at >= sqlc.arg(from_time)::timestamptz AND a.ended_at < sqlc.arg(to_time)::timestamptz
GROUP BY s.ward_id;

-- name: WardOccupancy :many
-- Beds per ward and state, for the occupancy gauge.
SELECT w.code AS ward_code, b.status, count(*)::int AS beds
FROM beds b JOIN rooms r ON r.id = b.room_id JOIN wards w ON w.id = r.ward_id
GROUP BY w.code, b.status
ORDER BY w.code, b.status;
