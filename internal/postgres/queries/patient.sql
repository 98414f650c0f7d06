-- name: PatientCreate :one
INSERT INTO patients (family_name, given_names, name_prefix, name_suffix, preferred_name, birth_date, sex,
                      gender_identity, birth_sex, phone, mobile_phone, email, address_line, address_line2, city,
                      district, postal_code, country, language, created_by)
VALUES (sqlc.arg(family_name), sqlc.arg(given_names), sqlc.arg(name_prefix), sqlc.arg(name_suffix),
        sqlc.arg(preferred_name), sqlc.narg(birth_date), sqlc.arg(sex), sqlc.arg(gender_identity), sqlc.arg(birth_sex),
        sqlc.arg(phone), sqlc.arg(mobile_phone), sqlc.arg(email), sqlc.arg(address_line), sqlc.arg(address_line2),
        sqlc.arg(city), sqlc.arg(district), sqlc.arg(postal_code), sqlc.arg(country), sqlc.arg(language),
        sqlc.narg(created_by))
RETURNING *;

-- name: PatientGet :one
SELECT * FROM patients WHERE id = $1;

-- name: PatientCount :one
SELECT count(*) FROM patients;

-- Keyset pages, one query per allowed sort: the ORDER BY is never built
-- from user input. The after_* arguments are the last row of the previous
-- page. Filters are optional (NULL = no filter); merged records are hidden.
-- A care-scoped actor's rows are fetched from the scope's patients
-- (patient_scope, migration 00020) by primary key: a row-by-row scope check
-- while walking the sort's index read the whole registry when the scope's
-- patients lay at the far end of the sort.

-- name: PatientListByName :many
-- In name order as the surname search orders (unaccented, lower case, byte
-- order), read from patients_family_unaccent_idx: ordered by lower(name)
-- in the database's collation, no index matched and every page sorted the
-- whole registry (1 s on a million patients). The cursor carries the keys.
SELECT sqlc.embed(patients), (lower(f_unaccent(family_name)) COLLATE "C")::text AS family_key,
       (lower(f_unaccent(given_names)) COLLATE "C")::text AS given_key
FROM patients
WHERE (sqlc.narg(after_family)::text IS NULL
       OR (lower(f_unaccent(family_name)) COLLATE "C", lower(f_unaccent(given_names)) COLLATE "C", id)
          > (sqlc.narg(after_family)::text COLLATE "C", sqlc.narg(after_given)::text COLLATE "C", sqlc.narg(after_id)::uuid))
  AND active
  AND (sqlc.narg(q_like)::text IS NULL OR lower(f_unaccent(family_name)) COLLATE "C" LIKE lower(f_unaccent(sqlc.narg(q_like)::text)))
  AND (sqlc.narg(q_similar)::text IS NULL OR search_name % lower(f_unaccent(sqlc.narg(q_similar)::text)))
  AND (sqlc.narg(birth_date)::date IS NULL OR birth_date = sqlc.narg(birth_date)::date)
  AND (sqlc.narg(mrn)::text IS NULL OR mrn = sqlc.narg(mrn)::text)
  AND (sqlc.narg(phone)::text IS NULL OR phone_digits LIKE '%' || sqlc.narg(phone)::text || '%')
  AND (sqlc.narg(identifier)::text IS NULL OR EXISTS (
        SELECT 1 FROM patient_identifiers pi WHERE pi.patient_id = patients.id AND pi.value = sqlc.narg(identifier)::text))
  AND (sqlc.narg(scope_user)::uuid IS NULL
       OR id = ANY (ARRAY(SELECT patient_scope(sqlc.narg(scope_user)::uuid, sqlc.arg(scope_wards)::uuid[], sqlc.narg(scope_department)::uuid))))
ORDER BY lower(f_unaccent(family_name)) COLLATE "C", lower(f_unaccent(given_names)) COLLATE "C", id
LIMIT sqlc.arg(lim);

-- name: PatientListByNameDesc :many
SELECT sqlc.embed(patients), (lower(f_unaccent(family_name)) COLLATE "C")::text AS family_key,
       (lower(f_unaccent(given_names)) COLLATE "C")::text AS given_key
FROM patients
WHERE (sqlc.narg(after_family)::text IS NULL
       OR (lower(f_unaccent(family_name)) COLLATE "C", lower(f_unaccent(given_names)) COLLATE "C", id)
          < (sqlc.narg(after_family)::text COLLATE "C", sqlc.narg(after_given)::text COLLATE "C", sqlc.narg(after_id)::uuid))
  AND active
  AND (sqlc.narg(q_like)::text IS NULL OR lower(f_unaccent(family_name)) COLLATE "C" LIKE lower(f_unaccent(sqlc.narg(q_like)::text)))
  AND (sqlc.narg(q_similar)::text IS NULL OR search_name % lower(f_unaccent(sqlc.narg(q_similar)::text)))
  AND (sqlc.narg(birth_date)::date IS NULL OR birth_date = sqlc.narg(birth_date)::date)
  AND (sqlc.narg(mrn)::text IS NULL OR mrn = sqlc.narg(mrn)::text)
  AND (sqlc.narg(phone)::text IS NULL OR phone_digits LIKE '%' || sqlc.narg(phone)::text || '%')
  AND (sqlc.narg(identifier)::text IS NULL OR EXISTS (
        SELECT 1 FROM patient_identifiers pi WHERE pi.patient_id = patients.id AND pi.value = sqlc.narg(identifier)::text))
  AND (sqlc.narg(scope_user)::uuid IS NULL
       OR id = ANY (ARRAY(SELECT patient_scope(sqlc.narg(scope_user)::uuid, sqlc.arg(scope_wards)::uuid[], sqlc.narg(scope_department)::uuid))))
ORDER BY lower(f_unaccent(family_name)) COLLATE "C" DESC, lower(f_unaccent(given_names)) COLLATE "C" DESC, id DESC
LIMIT sqlc.arg(lim);

-- name: PatientListByCreated :many
SELECT * FROM patients
WHERE (sqlc.narg(after_created)::timestamptz IS NULL OR (created_at, id) > (sqlc.narg(after_created)::timestamptz, sqlc.narg(after_id)::uuid))
  AND active
  AND (sqlc.narg(q_like)::text IS NULL OR lower(f_unaccent(family_name)) COLLATE "C" LIKE lower(f_unaccent(sqlc.narg(q_like)::text)))
  AND (sqlc.narg(q_similar)::text IS NULL OR search_name % lower(f_unaccent(sqlc.narg(q_similar)::text)))
  AND (sqlc.narg(birth_date)::date IS NULL OR birth_date = sqlc.narg(birth_date)::date)
  AND (sqlc.narg(mrn)::text IS NULL OR mrn = sqlc.narg(mrn)::text)
  AND (sqlc.narg(phone)::text IS NULL OR phone_digits LIKE '%' || sqlc.narg(phone)::text || '%')
  AND (sqlc.narg(identifier)::text IS NULL OR EXISTS (
        SELECT 1 FROM patient_identifiers pi WHERE pi.patient_id = patients.id AND pi.value = sqlc.narg(identifier)::text))
  AND (sqlc.narg(scope_user)::uuid IS NULL
       OR id = ANY (ARRAY(SELECT patient_scope(sqlc.narg(scope_user)::uuid, sqlc.arg(scope_wards)::uuid[], sqlc.narg(scope_department)::uuid))))
ORDER BY created_at, id
LIMIT sqlc.arg(lim);

-- name: PatientListByCreatedDesc :many
SELECT * FROM patients
WHERE (sqlc.narg(after_created)::timestamptz IS NULL OR (created_at, id) < (sqlc.narg(after_created)::timestamptz, sqlc.narg(after_id)::uuid))
  AND active
  AND (sqlc.narg(q_like)::text IS NULL OR lower(f_unaccent(family_name)) COLLATE "C" LIKE lower(f_unaccent(sqlc.narg(q_like)::text)))
  AND (sqlc.narg(q_similar)::text IS NULL OR search_name % lower(f_unaccent(sqlc.narg(q_similar)::text)))
  AND (sqlc.narg(birth_date)::date IS NULL OR birth_date = sqlc.narg(birth_date)::date)
  AND (sqlc.narg(mrn)::text IS NULL OR mrn = sqlc.narg(mrn)::text)
  AND (sqlc.narg(phone)::text IS NULL OR phone_digits LIKE '%' || sqlc.narg(phone)::text || '%')
  AND (sqlc.narg(identifier)::text IS NULL OR EXISTS (
        SELECT 1 FROM patient_identifiers pi WHERE pi.patient_id = patients.id AND pi.value = sqlc.narg(identifier)::text))
  AND (sqlc.narg(scope_user)::uuid IS NULL
       OR id = ANY (ARRAY(SELECT patient_scope(sqlc.narg(scope_user)::uuid, sqlc.arg(scope_wards)::uuid[], sqlc.narg(scope_department)::uuid))))
ORDER BY created_at DESC, id DESC
LIMIT sqlc.arg(lim);

-- name: PatientListByMRN :many
SELECT * FROM patients
WHERE (sqlc.narg(after_mrn)::text IS NULL OR mrn > sqlc.narg(after_mrn)::text)
  AND active
  AND (sqlc.narg(q_like)::text IS NULL OR lower(f_unaccent(family_name)) COLLATE "C" LIKE lower(f_unaccent(sqlc.narg(q_like)::text)))
  AND (sqlc.narg(q_similar)::text IS NULL OR search_name % lower(f_unaccent(sqlc.narg(q_similar)::text)))
  AND (sqlc.narg(birth_date)::date IS NULL OR birth_date = sqlc.narg(birth_date)::date)
  AND (sqlc.narg(mrn)::text IS NULL OR mrn = sqlc.narg(mrn)::text)
  AND (sqlc.narg(phone)::text IS NULL OR phone_digits LIKE '%' || sqlc.narg(phone)::text || '%')
  AND (sqlc.narg(identifier)::text IS NULL OR EXISTS (
        SELECT 1 FROM patient_identifiers pi WHERE pi.patient_id = patients.id AND pi.value = sqlc.narg(identifier)::text))
  AND (sqlc.narg(scope_user)::uuid IS NULL
       OR id = ANY (ARRAY(SELECT patient_scope(sqlc.narg(scope_user)::uuid, sqlc.arg(scope_wards)::uuid[], sqlc.narg(scope_department)::uuid))))
ORDER BY mrn
LIMIT sqlc.arg(lim);

-- name: PatientListByMRNDesc :many
SELECT * FROM patients
WHERE (sqlc.narg(after_mrn)::text IS NULL OR mrn < sqlc.narg(after_mrn)::text)
  AND active
  AND (sqlc.narg(q_like)::text IS NULL OR lower(f_unaccent(family_name)) COLLATE "C" LIKE lower(f_unaccent(sqlc.narg(q_like)::text)))
  AND (sqlc.narg(q_similar)::text IS NULL OR search_name % lower(f_unaccent(sqlc.narg(q_similar)::text)))
  AND (sqlc.narg(birth_date)::date IS NULL OR birth_date = sqlc.narg(birth_date)::date)
  AND (sqlc.narg(mrn)::text IS NULL OR mrn = sqlc.narg(mrn)::text)
  AND (sqlc.narg(phone)::text IS NULL OR phone_digits LIKE '%' || sqlc.narg(phone)::text || '%')
  AND (sqlc.narg(identifier)::text IS NULL OR EXISTS (
        SELECT 1 FROM patient_identifiers pi WHERE pi.patient_id = patients.id AND pi.value = sqlc.narg(identifier)::text))
  AND (sqlc.narg(scope_user)::uuid IS NULL
       OR id = ANY (ARRAY(SELECT patient_scope(sqlc.narg(scope_user)::uuid, sqlc.arg(scope_wards)::uuid[], sqlc.narg(scope_department)::uuid))))
ORDER BY mrn DESC
LIMIT sqlc.arg(lim);

-- name: PatientSearchBySurname :many
-- One word: patients whose (unaccented) family name starts with it, in
-- name order, straight from patients_family_unaccent_idx.
SELECT sqlc.embed(patients), (lower(f_unaccent(family_name)) COLLATE "C")::text AS family_key,
       (lower(f_unaccent(given_names)) COLLATE "C")::text AS given_key
FROM patients
WHERE lower(f_unaccent(family_name)) COLLATE "C" LIKE lower(f_unaccent(sqlc.arg(q_like)::text))
  AND active
  AND (sqlc.narg(after_family)::text IS NULL
       OR (lower(f_unaccent(family_name)) COLLATE "C", lower(f_unaccent(given_names)) COLLATE "C", id)
          > (sqlc.narg(after_family)::text COLLATE "C", sqlc.narg(after_given)::text COLLATE "C", sqlc.narg(after_id)::uuid))
  AND (sqlc.narg(birth_date)::date IS NULL OR birth_date = sqlc.narg(birth_date)::date)
  AND (sqlc.narg(mrn)::text IS NULL OR mrn = sqlc.narg(mrn)::text)
  AND (sqlc.narg(phone)::text IS NULL OR phone_digits LIKE '%' || sqlc.narg(phone)::text || '%')
  AND (sqlc.narg(identifier)::text IS NULL OR EXISTS (
        SELECT 1 FROM patient_identifiers pi WHERE pi.patient_id = patients.id AND pi.value = sqlc.narg(identifier)::text))
  AND (sqlc.narg(scope_user)::uuid IS NULL
       OR id = ANY (ARRAY(SELECT patient_scope(sqlc.narg(scope_user)::uuid, sqlc.arg(scope_wards)::uuid[], sqlc.narg(scope_department)::uuid))))
ORDER BY lower(f_unaccent(family_name)) COLLATE "C", lower(f_unaccent(given_names)) COLLATE "C", id
LIMIT sqlc.arg(lim);

-- name: PatientSearchByNameParts :many
-- Several words typed right: the words split in two, one side the start of
-- the family name and the other the start of the given names, in either
-- order and at any split ("naomi van der berg", "van der berg naomi"); the
-- parts arrive unnormalised and pairwise (family_parts[i] with
-- given_parts[i]). patient_search_parts (migration 00018) takes the family
-- names from the name dictionary and reads, for each in name order, the
-- patients with the given-name prefix, until the page is full.
SELECT sqlc.embed(patients), m.family_key::text AS family_key, m.given_key::text AS given_key, m.pos::int AS pos
FROM patient_search_parts(sqlc.arg(family_parts)::text[], sqlc.arg(given_parts)::text[],
        sqlc.narg(birth_date)::date, sqlc.narg(mrn)::text, sqlc.narg(phone)::text, sqlc.narg(identifier)::text,
        sqlc.narg(scope_user)::uuid, sqlc.arg(scope_wards)::uuid[], sqlc.narg(scope_department)::uuid,
        sqlc.narg(after_family)::text, sqlc.narg(after_given)::text, sqlc.narg(after_id)::uuid, sqlc.arg(lim)::int) m
JOIN patients ON patients.id = m.id
ORDER BY pos;

-- name: PatientSearchByNearName :many
-- A typo on one side of a split (see PatientSearchByNameParts), matched
-- through the name dictionary: the function patient_search_near (migration
-- 00011) scores pairs of dictionary names and reads the patients of the best
-- pairs, stopping when the page is full.
SELECT sqlc.embed(patients), m.score::float8 AS score, m.family_key::text AS family_key, m.given_key::text AS given_key,
       m.pos::int AS pos
FROM patient_search_near(sqlc.arg(family_parts)::text[], sqlc.arg(given_parts)::text[], sqlc.arg(q)::text,
        sqlc.narg(birth_date)::date, sqlc.narg(mrn)::text, sqlc.narg(phone)::text, sqlc.narg(identifier)::text,
        sqlc.narg(scope_user)::uuid, sqlc.arg(scope_wards)::uuid[], sqlc.narg(scope_department)::uuid,
        sqlc.narg(after_score)::float8, sqlc.narg(after_family)::text, sqlc.narg(after_given)::text,
        sqlc.narg(after_id)::uuid, sqlc.arg(lim)::int) m
JOIN patients ON patients.id = m.id
ORDER BY pos;

-- name: PatientSearchByRelevance :many
-- Several words: typo-tolerant full-name search by trigram similarity on
-- the unaccented, lower-cased names, best match first.
SELECT sqlc.embed(p), s.score
FROM patients p,
     LATERAL (SELECT similarity(p.search_name, lower(f_unaccent(sqlc.arg(q)::text)))::float8 AS score) s
WHERE p.search_name % lower(f_unaccent(sqlc.arg(q)::text))
  AND p.active
  AND (sqlc.narg(birth_date)::date IS NULL OR p.birth_date = sqlc.narg(birth_date)::date)
  AND (sqlc.narg(mrn)::text IS NULL OR p.mrn = sqlc.narg(mrn)::text)
  AND (sqlc.narg(phone)::text IS NULL OR p.phone_digits LIKE '%' || sqlc.narg(phone)::text || '%')
  AND (sqlc.narg(identifier)::text IS NULL OR EXISTS (
        SELECT 1 FROM patient_identifiers pi WHERE pi.patient_id = p.id AND pi.value = sqlc.narg(identifier)::text))
  AND (sqlc.narg(scope_user)::uuid IS NULL
       OR p.id = ANY (ARRAY(SELECT patient_scope(sqlc.narg(scope_user)::uuid, sqlc.arg(scope_wards)::uuid[], sqlc.narg(scope_department)::uuid))))
  AND (sqlc.narg(after_score)::float8 IS NULL OR (s.score, p.id) < (sqlc.narg(after_score)::float8, sqlc.narg(after_id)::uuid))
ORDER BY s.score DESC, p.id DESC
LIMIT sqlc.arg(lim);

-- name: SearchThreshold :exec
-- Trigram similarity needed to match, for this transaction only (safe
-- through PgBouncer's transaction pooling).
SELECT set_config('pg_trgm.similarity_threshold', sqlc.arg(threshold)::text, true);

-- name: PatientCopy :copyfrom
INSERT INTO patients (family_name, given_names, birth_date, sex, phone, email,
                      address_line, city, postal_code, country, language)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11);

-- name: PatientUpdate :one
-- Optimistic concurrency: only the version the client read is updated.
UPDATE patients SET family_name = sqlc.arg(family_name), given_names = sqlc.arg(given_names),
    name_prefix = sqlc.arg(name_prefix), name_suffix = sqlc.arg(name_suffix), preferred_name = sqlc.arg(preferred_name),
    birth_date = sqlc.narg(birth_date), sex = sqlc.arg(sex), gender_identity = sqlc.arg(gender_identity),
    birth_sex = sqlc.arg(birth_sex), phone = sqlc.arg(phone), mobile_phone = sqlc.arg(mobile_phone),
    email = sqlc.arg(email), address_line = sqlc.arg(address_line), address_line2 = sqlc.arg(address_line2),
    city = sqlc.arg(city), district = sqlc.arg(district), postal_code = sqlc.arg(postal_code),
    country = sqlc.arg(country), language = sqlc.arg(language), deceased = sqlc.arg(deceased),
    deceased_at = sqlc.narg(deceased_at), version = version + 1, updated_at = now()
WHERE id = sqlc.arg(id) AND version = sqlc.arg(version) AND active
RETURNING *;

-- name: PatientTouch :exec
-- Bumps the version after a change to identifiers or contacts, so ETags
-- and caches see it.
UPDATE patients SET version = version + 1, updated_at = now() WHERE id = $1;

-- name: IdentifierList :many
SELECT * FROM patient_identifiers WHERE patient_id = $1 ORDER BY type, system;

-- name: IdentifierAdd :one
INSERT INTO patient_identifiers (patient_id, type, system, value) VALUES ($1, $2, $3, $4) RETURNING *;

-- name: IdentifierDelete :execrows
DELETE FROM patient_identifiers WHERE id = $1 AND patient_id = $2;

-- name: ContactList :many
SELECT * FROM patient_contacts WHERE patient_id = $1 ORDER BY relationship, name;

-- name: ContactAdd :one
INSERT INTO patient_contacts (patient_id, relationship, name, phone, email, address) VALUES ($1, $2, $3, $4, $5, $6) RETURNING *;

-- name: ContactDelete :execrows
DELETE FROM patient_contacts WHERE id = $1 AND patient_id = $2;

-- name: PatientDuplicates :many
-- Likely duplicates of a new registration, scored 0..1: name similarity
-- (half), same date of birth, same phone digits, same identifier. The
-- candidates are three sets, each read through its own index: names at
-- least as similar as the transaction's trigram threshold, everyone born
-- the same day, and the same identifiers. (As one OR over the table, the
-- planner could only read all of it, computing a similarity per patient:
-- 2.2 s per registration on a million patients.) A likely duplicate (0.6)
-- without the same birth date or identifier needs a name similarity of at
-- least 0.9 (0.45 + 0.15 for the phone), so a registration sets the
-- threshold to 0.9 (a few ms) and finds every likely duplicate the full
-- comparison would; the duplicate check shown on screen sets the search's
-- 0.45, to list weaker candidates too.
WITH cand_ids AS (
    SELECT p.id FROM patients p
    WHERE p.active AND p.search_name % lower(f_unaccent(sqlc.arg(name)::text))
    UNION
    SELECT p.id FROM patients p WHERE p.active AND p.birth_date = sqlc.narg(birth_date)::date
    UNION
    SELECT pi.patient_id FROM patient_identifiers pi WHERE pi.value = ANY(sqlc.arg(identifiers)::text[])
), cand AS (
    SELECT p.id,
           similarity(p.search_name, lower(f_unaccent(sqlc.arg(name)::text)))::float8 AS name_score,
           (sqlc.narg(birth_date)::date IS NOT NULL AND p.birth_date = sqlc.narg(birth_date)::date) AS same_birth,
           (sqlc.arg(phone)::text <> '' AND p.phone_digits LIKE '%' || sqlc.arg(phone)::text || '%') AS same_phone,
           EXISTS (SELECT 1 FROM patient_identifiers pi WHERE pi.patient_id = p.id
                   AND pi.value = ANY(sqlc.arg(identifiers)::text[])) AS same_identifier
    FROM cand_ids c JOIN patients p ON p.id = c.id
    WHERE p.active
)
SELECT sqlc.embed(p), least(1.0, 0.5 * c.name_score + CASE WHEN c.same_birth THEN 0.3 ELSE 0 END
                  + CASE WHEN c.same_phone THEN 0.15 ELSE 0 END
                  + CASE WHEN c.same_identifier THEN 0.6 ELSE 0 END)::float8 AS score,
       c.name_score, c.same_birth, c.same_phone, c.same_identifier
FROM cand c JOIN patients p ON p.id = c.id
ORDER BY score DESC, p.id
LIMIT 10;

-- name: PatientMerge :one
SELECT merge_patients(sqlc.arg(survivor)::uuid, sqlc.arg(merged)::uuid)::jsonb AS moved;

-- name: PatientMarkMerged :exec
UPDATE patients SET active = false, merged_into = $2, version = version + 1, updated_at = now() WHERE id = $1 AND active;

-- name: PatientMergeRecord :one
INSERT INTO patient_merges (survivor_id, merged_id, moved, merged_by) VALUES ($1, $2, $3, $4) RETURNING *;

-- name: PatientMergeGet :one
SELECT * FROM patient_merges WHERE id = $1;

-- name: PatientMergeList :many
-- The merges a record took part in, as survivor or as the merged record,
-- newest first, with both records' MRNs.
SELECT sqlc.embed(m), s.mrn AS survivor_mrn, d.mrn AS merged_mrn
FROM patient_merges m
JOIN patients s ON s.id = m.survivor_id
JOIN patients d ON d.id = m.merged_id
WHERE m.survivor_id = sqlc.arg(patient_id) OR m.merged_id = sqlc.arg(patient_id)
ORDER BY m.merged_at DESC, m.id
LIMIT 200;

-- name: PatientMergeForUpdate :one
SELECT * FROM patient_merges WHERE id = $1 FOR UPDATE;

-- name: PatientUnmerge :exec
SELECT unmerge_patients(sqlc.arg(merged)::uuid, sqlc.arg(moved)::jsonb);

-- name: PatientReactivate :exec
UPDATE patients SET active = true, merged_into = NULL, version = version + 1, updated_at = now() WHERE id = $1;

-- name: PatientMergeUndone :exec
UPDATE patient_merges SET undone_at = now(), undone_by = $2 WHERE id = $1;

-- name: PatientGetForUpdate :one
SELECT * FROM patients WHERE id = $1 FOR UPDATE;
