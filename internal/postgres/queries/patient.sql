-- name: PatientCreate :one
INSERT INTO patients (family_name, given_names, birth_date, sex, phone, email,
                      address_line, city, postal_code, country, created_by)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
RETURNING *;

-- name: PatientGet :one
SELECT * FROM patients WHERE id = $1;

-- name: PatientCount :one
SELECT count(*) FROM patients;

-- Keyset pages, one query per allowed sort: the ORDER BY is never built
-- from user input. The *_after argument is the last row of the previous page.

-- name: PatientListByName :many
SELECT * FROM patients
WHERE (sqlc.narg(prefix)::text IS NULL OR lower(family_name) LIKE lower(sqlc.narg(prefix)::text) || '%')
  AND (sqlc.narg(after_family)::text IS NULL
       OR (lower(family_name), lower(given_names), id) > (lower(sqlc.narg(after_family)::text), lower(sqlc.narg(after_given)::text), sqlc.narg(after_id)::uuid))
  AND (sqlc.narg(scope_user)::uuid IS NULL
       OR patient_in_scope(id, sqlc.narg(scope_user)::uuid, sqlc.arg(scope_wards)::uuid[], sqlc.narg(scope_department)::uuid))
ORDER BY lower(family_name), lower(given_names), id
LIMIT sqlc.arg(lim);

-- name: PatientListByNameDesc :many
SELECT * FROM patients
WHERE (sqlc.narg(prefix)::text IS NULL OR lower(family_name) LIKE lower(sqlc.narg(prefix)::text) || '%')
  AND (sqlc.narg(after_family)::text IS NULL
       OR (lower(family_name), lower(given_names), id) < (lower(sqlc.narg(after_family)::text), lower(sqlc.narg(after_given)::text), sqlc.narg(after_id)::uuid))
  AND (sqlc.narg(scope_user)::uuid IS NULL
       OR patient_in_scope(id, sqlc.narg(scope_user)::uuid, sqlc.arg(scope_wards)::uuid[], sqlc.narg(scope_department)::uuid))
ORDER BY lower(family_name) DESC, lower(given_names) DESC, id DESC
LIMIT sqlc.arg(lim);

-- name: PatientListByCreated :many
SELECT * FROM patients
WHERE (sqlc.narg(prefix)::text IS NULL OR lower(family_name) LIKE lower(sqlc.narg(prefix)::text) || '%')
  AND (sqlc.narg(after_created)::timestamptz IS NULL
       OR (created_at, id) > (sqlc.narg(after_created)::timestamptz, sqlc.narg(after_id)::uuid))
  AND (sqlc.narg(scope_user)::uuid IS NULL
       OR patient_in_scope(id, sqlc.narg(scope_user)::uuid, sqlc.arg(scope_wards)::uuid[], sqlc.narg(scope_department)::uuid))
ORDER BY created_at, id
LIMIT sqlc.arg(lim);

-- name: PatientListByCreatedDesc :many
SELECT * FROM patients
WHERE (sqlc.narg(prefix)::text IS NULL OR lower(family_name) LIKE lower(sqlc.narg(prefix)::text) || '%')
  AND (sqlc.narg(after_created)::timestamptz IS NULL
       OR (created_at, id) < (sqlc.narg(after_created)::timestamptz, sqlc.narg(after_id)::uuid))
  AND (sqlc.narg(scope_user)::uuid IS NULL
       OR patient_in_scope(id, sqlc.narg(scope_user)::uuid, sqlc.arg(scope_wards)::uuid[], sqlc.narg(scope_department)::uuid))
ORDER BY created_at DESC, id DESC
LIMIT sqlc.arg(lim);

-- name: PatientListByMRN :many
SELECT * FROM patients
WHERE (sqlc.narg(prefix)::text IS NULL OR lower(family_name) LIKE lower(sqlc.narg(prefix)::text) || '%')
  AND (sqlc.narg(after_mrn)::text IS NULL OR mrn > sqlc.narg(after_mrn)::text)
  AND (sqlc.narg(scope_user)::uuid IS NULL
       OR patient_in_scope(id, sqlc.narg(scope_user)::uuid, sqlc.arg(scope_wards)::uuid[], sqlc.narg(scope_department)::uuid))
ORDER BY mrn
LIMIT sqlc.arg(lim);

-- name: PatientListByMRNDesc :many
SELECT * FROM patients
WHERE (sqlc.narg(prefix)::text IS NULL OR lower(family_name) LIKE lower(sqlc.narg(prefix)::text) || '%')
  AND (sqlc.narg(after_mrn)::text IS NULL OR mrn < sqlc.narg(after_mrn)::text)
  AND (sqlc.narg(scope_user)::uuid IS NULL
       OR patient_in_scope(id, sqlc.narg(scope_user)::uuid, sqlc.arg(scope_wards)::uuid[], sqlc.narg(scope_department)::uuid))
ORDER BY mrn DESC
LIMIT sqlc.arg(lim);

-- name: PatientCopy :copyfrom
INSERT INTO patients (family_name, given_names, birth_date, sex, phone, email,
                      address_line, city, postal_code, country)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10);

-- name: PatientUpdate :one
-- Optimistic concurrency: only the version the client read is updated.
UPDATE patients SET family_name = $3, given_names = $4, birth_date = $5, sex = $6, phone = $7, email = $8,
    address_line = $9, city = $10, postal_code = $11, country = $12,
    version = version + 1, updated_at = now()
WHERE id = $1 AND version = $2
RETURNING *;
