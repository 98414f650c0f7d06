-- A clinician's search of several words read every family name with the
-- prefix and checked each candidate's care row by row (patient_in_scope):
-- the loop of patient_search_parts stops when a page is full, and a
-- clinician's page seldom fills, so "garcia m" walked every family name
-- starting with m (174 ms for a nurse on the benchmark database). For a
-- scoped actor the function now starts from the patients in their care
-- (patient_scope, migration 00020), as the lists do, and matches their
-- names: the same rows in the same order (TestSearchPartsFunctionMatchesStatement
-- compares it, scoped and not, with the statement both replaced).

-- +goose Up
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION patient_search_parts(
    p_family_parts text[], p_given_parts text[],
    p_birth_date date, p_mrn text, p_phone text, p_identifier text,
    p_scope_user uuid, p_scope_wards uuid[], p_scope_department uuid,
    p_after_family text, p_after_given text, p_after_id uuid, p_lim int)
RETURNS TABLE (id uuid, family_key text, given_key text, pos int)
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    r record;
    n int := 0;
    got int;
BEGIN
    IF p_scope_user IS NOT NULL THEN
        -- A clinician: the patients in their care whose names match, from
        -- the scope's set (patient_scope) instead of every family name
        -- with the prefix, which the loop below walks until a page fills,
        -- and a clinician's page seldom fills.
        RETURN QUERY
        SELECT x.id, x.family_key::text, x.given_key::text,
               (row_number() OVER (ORDER BY x.family_key, x.given_key, x.id))::int
        FROM (SELECT p.id, lower(f_unaccent(p.family_name)) COLLATE "C" AS family_key,
                     lower(f_unaccent(p.given_names)) COLLATE "C" AS given_key
              FROM patients p
              WHERE p.id = ANY (ARRAY(SELECT patient_scope(p_scope_user, p_scope_wards, p_scope_department)))
                AND p.active
                AND EXISTS (SELECT 1 FROM generate_subscripts(p_family_parts, 1) AS i
                            WHERE lower(f_unaccent(p.family_name)) COLLATE "C" >= lower(f_unaccent(p_family_parts[i])) COLLATE "C"
                              AND lower(f_unaccent(p.family_name)) COLLATE "C" < (lower(f_unaccent(p_family_parts[i])) || chr(1114111)) COLLATE "C"
                              AND lower(f_unaccent(p.given_names)) COLLATE "C" >= lower(f_unaccent(p_given_parts[i])) COLLATE "C"
                              AND lower(f_unaccent(p.given_names)) COLLATE "C" < (lower(f_unaccent(p_given_parts[i])) || chr(1114111)) COLLATE "C")
                AND (p_after_family IS NULL
                     OR (lower(f_unaccent(p.family_name)) COLLATE "C", lower(f_unaccent(p.given_names)) COLLATE "C", p.id)
                        > (p_after_family COLLATE "C", p_after_given COLLATE "C", p_after_id))
                AND (p_birth_date IS NULL OR p.birth_date = p_birth_date)
                AND (p_mrn IS NULL OR p.mrn = p_mrn)
                AND (p_phone IS NULL OR p.phone_digits LIKE '%' || p_phone || '%')
                AND (p_identifier IS NULL OR EXISTS (
                      SELECT 1 FROM patient_identifiers pi WHERE pi.patient_id = p.id AND pi.value = p_identifier))
              ORDER BY 2, 3, 1
              LIMIT p_lim) x;
        RETURN;
    END IF;
    FOR r IN
        SELECT fk.name AS family, array_agg(DISTINCT s.g) AS givens
        FROM (SELECT lower(f_unaccent(p_family_parts[i])) COLLATE "C" AS f,
                     lower(f_unaccent(p_given_parts[i])) COLLATE "C" AS g
              FROM generate_subscripts(p_family_parts, 1) AS i) s
        JOIN patient_name_keys fk ON fk.kind = 'f' AND fk.name >= s.f AND fk.name < s.f || chr(1114111)
        WHERE p_after_family IS NULL OR fk.name >= p_after_family COLLATE "C"
        GROUP BY fk.name
        ORDER BY fk.name
    LOOP
        RETURN QUERY
        SELECT x.id, r.family::text, x.given_key::text, (n + row_number() OVER (ORDER BY x.given_key, x.id))::int
        FROM (SELECT DISTINCT y.id, y.given_key
              FROM unnest(r.givens) AS g(prefix)
              CROSS JOIN LATERAL (
                  SELECT p.id, lower(f_unaccent(p.given_names)) COLLATE "C" AS given_key
                  FROM patients p
                  WHERE lower(f_unaccent(p.family_name)) COLLATE "C" = r.family
                    AND lower(f_unaccent(p.given_names)) COLLATE "C" >= g.prefix
                    AND lower(f_unaccent(p.given_names)) COLLATE "C" < g.prefix || chr(1114111)
                    AND p.active
                    AND (p_after_family IS NULL OR r.family > p_after_family COLLATE "C"
                         OR (lower(f_unaccent(p.given_names)) COLLATE "C", p.id) > (p_after_given COLLATE "C", p_after_id))
                    AND (p_birth_date IS NULL OR p.birth_date = p_birth_date)
                    AND (p_mrn IS NULL OR p.mrn = p_mrn)
                    AND (p_phone IS NULL OR p.phone_digits LIKE '%' || p_phone || '%')
                    AND (p_identifier IS NULL OR EXISTS (
                          SELECT 1 FROM patient_identifiers pi WHERE pi.patient_id = p.id AND pi.value = p_identifier))
                    AND (p_scope_user IS NULL OR patient_in_scope(p.id, p_scope_user, p_scope_wards, p_scope_department))
                  ORDER BY 2, 1
                  LIMIT p_lim - n) y
              ORDER BY y.given_key, y.id
              LIMIT p_lim - n) x;
        GET DIAGNOSTICS got = ROW_COUNT;
        n := n + got;
        EXIT WHEN n >= p_lim;
    END LOOP;
END $$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION patient_search_parts(
    p_family_parts text[], p_given_parts text[],
    p_birth_date date, p_mrn text, p_phone text, p_identifier text,
    p_scope_user uuid, p_scope_wards uuid[], p_scope_department uuid,
    p_after_family text, p_after_given text, p_after_id uuid, p_lim int)
RETURNS TABLE (id uuid, family_key text, given_key text, pos int)
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    r record;
    n int := 0;
    got int;
BEGIN
    FOR r IN
        SELECT fk.name AS family, array_agg(DISTINCT s.g) AS givens
        FROM (SELECT lower(f_unaccent(p_family_parts[i])) COLLATE "C" AS f,
                     lower(f_unaccent(p_given_parts[i])) COLLATE "C" AS g
              FROM generate_subscripts(p_family_parts, 1) AS i) s
        JOIN patient_name_keys fk ON fk.kind = 'f' AND fk.name >= s.f AND fk.name < s.f || chr(1114111)
        WHERE p_after_family IS NULL OR fk.name >= p_after_family COLLATE "C"
        GROUP BY fk.name
        ORDER BY fk.name
    LOOP
        RETURN QUERY
        SELECT x.id, r.family::text, x.given_key::text, (n + row_number() OVER (ORDER BY x.given_key, x.id))::int
        FROM (SELECT DISTINCT y.id, y.given_key
              FROM unnest(r.givens) AS g(prefix)
              CROSS JOIN LATERAL (
                  SELECT p.id, lower(f_unaccent(p.given_names)) COLLATE "C" AS given_key
                  FROM patients p
                  WHERE lower(f_unaccent(p.family_name)) COLLATE "C" = r.family
                    AND lower(f_unaccent(p.given_names)) COLLATE "C" >= g.prefix
                    AND lower(f_unaccent(p.given_names)) COLLATE "C" < g.prefix || chr(1114111)
                    AND p.active
                    AND (p_after_family IS NULL OR r.family > p_after_family COLLATE "C"
                         OR (lower(f_unaccent(p.given_names)) COLLATE "C", p.id) > (p_after_given COLLATE "C", p_after_id))
                    AND (p_birth_date IS NULL OR p.birth_date = p_birth_date)
                    AND (p_mrn IS NULL OR p.mrn = p_mrn)
                    AND (p_phone IS NULL OR p.phone_digits LIKE '%' || p_phone || '%')
                    AND (p_identifier IS NULL OR EXISTS (
                          SELECT 1 FROM patient_identifiers pi WHERE pi.patient_id = p.id AND pi.value = p_identifier))
                    AND (p_scope_user IS NULL OR patient_in_scope(p.id, p_scope_user, p_scope_wards, p_scope_department))
                  ORDER BY 2, 1
                  LIMIT p_lim - n) y
              ORDER BY y.given_key, y.id
              LIMIT p_lim - n) x;
        GET DIAGNOSTICS got = ROW_COUNT;
        n := n + got;
        EXIT WHEN n >= p_lim;
    END LOOP;
END $$;
-- +goose StatementEnd
