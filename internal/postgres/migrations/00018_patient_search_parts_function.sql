-- Several words typed right ("maria garcia", "van der berg naomi"): the
-- patients whose family name starts with one side of a split of the words
-- and whose given names start with the other (PatientSearchByNameParts).
-- It was one statement: for each split, a range of
-- patients_family_unaccent_idx on the family prefix, with the given-name
-- prefix checked on every entry of that range. That walked every patient
-- whose family name starts with the prefix (thousands for a common
-- surname) to find the few with the given name, 1.9 ms per search at 400
-- searches/s on the benchmark's million patients; and, an unnamed statement
-- through PgBouncer, it was planned at every call, 0.9 ms more. The two made
-- the largest share of the database's time in the search scenario
-- (pg_stat_statements: 22 of 45 s over 30 s).
--
-- Now a PL/pgSQL function takes the family names that start with a side from the name dictionary (migration
-- 00011), in name order, and for each reads the patients with exactly that
-- family name and the given-name prefix: a range of the same index on both
-- columns. It stops when the page is full. Same rows in the same order as
-- the statement (TestSearchPartsFunctionMatchesStatement): family name,
-- given names, id; the same filters; after_* is the last row of the
-- previous page. pos numbers the rows in result order.
--
-- Its plans are forced generic. PL/pgSQL keeps a statement's plan per
-- server connection, but PostgreSQL plans it again for the values of each
-- call (a custom plan) until a generic plan looks as cheap, and with the
-- optional filters it never did: measured at 400 searches/s, each of the
-- five or so per-family reads of a search was planned anew, 1.0 ms of
-- planning for 0.03 ms of reading, and a search cost 8.6 ms of the database
-- (more than the statement). Generic, the plans are those the custom plans
-- were (a range of the index on both columns, the filters as filters) and a
-- search costs 0.6 ms: at 400/s the search scenario's p95 fell from 59-74
-- ms to 9-11 ms.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION patient_search_parts(
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

-- The typo search's function had the same hidden cost: the statements in
-- it were planned again at every call (0.3-0.5 ms each), generic plans
-- never chosen. Forced generic, one typo search cost 1.8 ms of the database
-- instead of 4.2.
ALTER FUNCTION patient_search_near(text[], text[], text, date, text, text, text, uuid, uuid[], uuid, float8, text, text, uuid, int)
    SET plan_cache_mode = force_generic_plan;

-- +goose Down
ALTER FUNCTION patient_search_near(text[], text[], text, date, text, text, text, uuid, uuid[], uuid, float8, text, text, uuid, int)
    RESET plan_cache_mode;
DROP FUNCTION patient_search_parts(text[], text[], date, text, text, text, uuid, uuid[], uuid, text, text, uuid, int);
