-- A clinician's typo search read the patients of every name pair near the
-- query and checked each one's care row by row (patient_in_scope): the
-- loop of patient_search_near stops when a page is full, and a
-- clinician's page seldom fills, so an empty or short result (most of a
-- clinician's searches that reach this stage) cost 20-40 ms on the
-- benchmark database. For a scoped actor the function now starts from the
-- patients in their care (patient_scope), as patient_search_parts does
-- since migration 00023, scores each one's (family name, first given name)
-- as the loop scores the pair, and keeps the loop's order and cursor:
-- TestSearchNearScopedMatchesUnscoped compares it, page by page, with the
-- unscoped search filtered to the scope.

-- +goose Up
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION patient_search_near(
    p_family_parts text[], p_given_parts text[], p_q text,
    p_birth_date date, p_mrn text, p_phone text, p_identifier text,
    p_scope_user uuid, p_scope_wards uuid[], p_scope_department uuid,
    p_after_score float8, p_after_family text, p_after_given text, p_after_id uuid, p_lim int)
RETURNS TABLE (id uuid, score float8, family_key text, given_key text, pos int)
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    r record;
    n int := 0;
    got int;
BEGIN
    IF p_scope_user IS NOT NULL THEN
        -- A clinician: the patients in their care (patient_scope) whose
        -- (family name, first given name) is a pair the loop below would
        -- read, with the pair's score, in the loop's order: best score,
        -- then family name, given names and id. The loop reads the pairs
        -- best first until a page fills, and a clinician's page seldom
        -- fills, so it read the patients of every pair.
        RETURN QUERY
        SELECT x.id, x.score, x.family_key::text, x.given_key::text,
               (row_number() OVER (ORDER BY x.score DESC, x.family_key, x.given_key, x.id))::int
        FROM (SELECT c.id, c.family_key, c.given_key,
                     similarity(c.given || ' ' || c.family_key, lower(f_unaccent(p_q)))::float8 AS score
              FROM (SELECT p.id, lower(f_unaccent(p.family_name)) COLLATE "C" AS family_key,
                           lower(f_unaccent(p.given_names)) COLLATE "C" AS given_key,
                           split_part(lower(f_unaccent(p.given_names)), ' ', 1) COLLATE "C" AS given,
                           p.birth_date, p.mrn, p.phone_digits
                    FROM patients p
                    WHERE p.id = ANY (ARRAY(SELECT patient_scope(p_scope_user, p_scope_wards, p_scope_department)))
                      AND p.active) c
              WHERE c.family_key <> '' AND c.given <> ''
                AND EXISTS (
                    SELECT 1
                    FROM (SELECT lower(f_unaccent(p_family_parts[i])) COLLATE "C" AS f,
                                 lower(f_unaccent(p_given_parts[i])) COLLATE "C" AS g
                          FROM generate_subscripts(p_family_parts, 1) AS i
                          WHERE p_given_parts[i] <> '') parts
                    WHERE (c.family_key >= parts.f AND c.family_key < parts.f || chr(1114111)
                           AND c.given >= left(parts.g, 1) AND c.given < left(parts.g, 1) || chr(1114111)
                           AND near(c.given, split_part(parts.g, ' ', 1)))
                       OR (c.family_key >= left(parts.f, 1) AND c.family_key < left(parts.f, 1) || chr(1114111)
                           AND near(c.family_key, parts.f)
                           AND c.given >= parts.g AND c.given < parts.g || chr(1114111)))
                AND (p_birth_date IS NULL OR c.birth_date = p_birth_date)
                AND (p_mrn IS NULL OR c.mrn = p_mrn)
                AND (p_phone IS NULL OR c.phone_digits LIKE '%' || p_phone || '%')
                AND (p_identifier IS NULL OR EXISTS (
                      SELECT 1 FROM patient_identifiers pi WHERE pi.patient_id = c.id AND pi.value = p_identifier))) x
        WHERE x.score >= 0.3
          AND (p_after_score IS NULL OR x.score < p_after_score
               OR (x.score = p_after_score AND (x.family_key > p_after_family COLLATE "C"
                   OR (x.family_key = p_after_family COLLATE "C" AND (x.given_key, x.id) > (p_after_given COLLATE "C", p_after_id)))))
        ORDER BY x.score DESC, x.family_key, x.given_key, x.id
        LIMIT p_lim;
        RETURN;
    END IF;
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

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION patient_search_near(
    p_family_parts text[], p_given_parts text[], p_q text,
    p_birth_date date, p_mrn text, p_phone text, p_identifier text,
    p_scope_user uuid, p_scope_wards uuid[], p_scope_department uuid,
    p_after_score float8, p_after_family text, p_after_given text, p_after_id uuid, p_lim int)
RETURNS TABLE (id uuid, score float8, family_key text, given_key text, pos int)
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan
AS $$
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
