-- Typo-tolerant search without scoring patients. A mistyped name used to be
-- matched by trigram similarity against every patient sharing the other
-- word (10-100 ms under load for a common surname on 1,000,000 patients):
-- the cost grew with patients. This dictionary holds each distinct
-- unaccented family name and first given name once (about 17,000 and 200
-- for the benchmark's million patients); a search scores the few hundred
-- dictionary pairs that could be meant, then fetches the patients of the
-- best pairs by equality on patients_family_unaccent_idx, best pair first,
-- stopping as soon as a page is full (patient_search_near). It is a
-- PL/pgSQL function for that early stop and because its plans are kept per
-- server connection: planned at every call, through PgBouncer, the query
-- cost as much to plan as to run (2.6 ms).
--
-- Kept by statement-level triggers (one INSERT per statement, COPY
-- included). Names are never removed: a stale name only costs a lookup that
-- finds nobody. Keys are inserted in (kind, name) order so that concurrent
-- registrations of the same new names cannot deadlock on them.

-- +goose Up
CREATE EXTENSION IF NOT EXISTS fuzzystrmatch; -- levenshtein_less_equal; a trusted extension

CREATE TABLE patient_name_keys (
    kind "char" NOT NULL CHECK (kind IN ('f', 'g')), -- f: family name, g: first given name
    name text COLLATE "C" NOT NULL CHECK (name <> ''),
    PRIMARY KEY (kind, name)
);

-- +goose StatementBegin
CREATE FUNCTION patient_name_keys_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO patient_name_keys (kind, name)
    SELECT DISTINCT k.kind, k.name
    FROM new_rows n,
         LATERAL (VALUES ('f'::"char", lower(f_unaccent(n.family_name)) COLLATE "C"),
                         ('g'::"char", split_part(lower(f_unaccent(n.given_names)), ' ', 1) COLLATE "C")) AS k(kind, name)
    WHERE k.name <> ''
      AND NOT EXISTS (SELECT 1 FROM patient_name_keys x WHERE x.kind = k.kind AND x.name = k.name)
    ORDER BY 1, 2
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;
-- +goose StatementEnd

-- patient_search_near: a typo on one side of a split of the query (see
-- PatientSearchByNameParts): the other side is typed right (a prefix of a
-- dictionary name) and the mistyped one keeps its first letter and is at
-- most two edits from a dictionary name, three from ten letters up (a swap
-- of two letters is two edits; for given names the first word counts, as
-- the dictionary holds first given names). Each
-- candidate pair (family name, first given name) is scored by trigram
-- similarity to the whole query; pairs from 0.3 up are read best first,
-- then family name and given name, and within a pair in given-names and id
-- order. The filters are those of the other search queries. after_* is the
-- last row of the previous page. pos numbers the rows in result order.
-- near: name is at most two edits from typed, three from ten letters up.
-- The length test first: it is cheap, and implied by the edit distance.
CREATE FUNCTION near(name text, typed text) RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN abs(length(name) - length(typed)) > CASE WHEN length(typed) >= 10 THEN 3 ELSE 2 END THEN false
                ELSE levenshtein_less_equal(name, typed, 3) <= CASE WHEN length(typed) >= 10 THEN 3 ELSE 2 END END;

-- +goose StatementBegin
CREATE FUNCTION patient_search_near(
    p_family_parts text[], p_given_parts text[], p_q text,
    p_birth_date date, p_mrn text, p_phone text, p_identifier text,
    p_scope_user uuid, p_scope_wards uuid[], p_scope_department uuid,
    p_after_score float8, p_after_family text, p_after_given text, p_after_id uuid, p_lim int)
RETURNS TABLE (id uuid, score float8, family_key text, given_key text, pos int)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    r record;
    n int := 0;
    got int;
BEGIN
    FOR r IN
        WITH parts AS (
            SELECT lower(f_unaccent(p_family_parts[i])) COLLATE "C" AS f, lower(f_unaccent(p_given_parts[i])) COLLATE "C" AS g
            FROM generate_subscripts(p_family_parts, 1) AS i
            WHERE p_given_parts[i] <> '' -- a family name alone has no pair to score
        ), pairs AS (
            SELECT fk.name AS family, gk.name AS given
            FROM parts
            JOIN patient_name_keys fk ON fk.kind = 'f' AND fk.name >= parts.f AND fk.name < parts.f || chr(1114111)
            JOIN patient_name_keys gk ON gk.kind = 'g' AND gk.name >= left(parts.g, 1) AND gk.name < left(parts.g, 1) || chr(1114111)
              AND near(gk.name, split_part(parts.g, ' ', 1))
            UNION
            SELECT fk.name, gk.name
            FROM parts
            JOIN patient_name_keys fk ON fk.kind = 'f' AND fk.name >= left(parts.f, 1) AND fk.name < left(parts.f, 1) || chr(1114111)
                                     AND near(fk.name, parts.f)
            JOIN patient_name_keys gk ON gk.kind = 'g' AND gk.name >= parts.g AND gk.name < parts.g || chr(1114111)
        )
        SELECT s.family, s.given, s.score
        FROM (SELECT pairs.family, pairs.given,
                     similarity(pairs.given || ' ' || pairs.family, lower(f_unaccent(p_q)))::float8 AS score
              FROM pairs) s
        WHERE s.score >= 0.3
          AND (p_after_score IS NULL OR s.score < p_after_score
               OR (s.score = p_after_score AND s.family >= p_after_family COLLATE "C"))
        ORDER BY s.score DESC, s.family, s.given
    LOOP
        RETURN QUERY
        SELECT x.id, r.score, x.family_key::text, x.given_key::text, (n + row_number() OVER (ORDER BY x.given_key, x.id))::int
        FROM (SELECT p.id, lower(f_unaccent(p.given_names)) COLLATE "C" AS given_key,
                     lower(f_unaccent(p.family_name)) COLLATE "C" AS family_key
              FROM patients p
              WHERE lower(f_unaccent(p.family_name)) COLLATE "C" = r.family
                AND lower(f_unaccent(p.given_names)) COLLATE "C" >= r.given
                AND lower(f_unaccent(p.given_names)) COLLATE "C" < r.given || chr(1114111)
                AND split_part(lower(f_unaccent(p.given_names)), ' ', 1) = r.given
                AND p.active
                AND (p_after_score IS NULL OR r.score < p_after_score OR r.family > p_after_family COLLATE "C"
                     OR (lower(f_unaccent(p.given_names)) COLLATE "C", p.id) > (p_after_given COLLATE "C", p_after_id))
                AND (p_birth_date IS NULL OR p.birth_date = p_birth_date)
                AND (p_mrn IS NULL OR p.mrn = p_mrn)
                AND (p_phone IS NULL OR p.phone_digits LIKE '%' || p_phone || '%')
                AND (p_identifier IS NULL OR EXISTS (
                      SELECT 1 FROM patient_identifiers pi WHERE pi.patient_id = p.id AND pi.value = p_identifier))
                AND (p_scope_user IS NULL OR patient_in_scope(p.id, p_scope_user, p_scope_wards, p_scope_department))
              ORDER BY 2, 1
              LIMIT p_lim - n) x;
        GET DIAGNOSTICS got = ROW_COUNT;
        n := n + got;
        EXIT WHEN n >= p_lim;
    END LOOP;
END $$;
-- +goose StatementEnd

-- Transition tables allow one event per trigger and no column list.
CREATE TRIGGER patients_name_keys_insert AFTER INSERT ON patients
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION patient_name_keys_add();
CREATE TRIGGER patients_name_keys_update AFTER UPDATE ON patients
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION patient_name_keys_add();

INSERT INTO patient_name_keys (kind, name)
SELECT DISTINCT 'f'::"char", lower(f_unaccent(family_name)) COLLATE "C" FROM patients WHERE family_name <> ''
UNION
SELECT DISTINCT 'g'::"char", split_part(lower(f_unaccent(given_names)), ' ', 1) COLLATE "C" FROM patients
WHERE split_part(lower(f_unaccent(given_names)), ' ', 1) <> '';
ANALYZE patient_name_keys;

-- +goose Down
DROP FUNCTION patient_search_near;
DROP FUNCTION near;
DROP TRIGGER patients_name_keys_update ON patients;
DROP TRIGGER patients_name_keys_insert ON patients;
DROP FUNCTION patient_name_keys_add();
DROP TABLE patient_name_keys;
