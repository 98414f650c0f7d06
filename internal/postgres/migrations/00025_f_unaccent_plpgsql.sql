-- f_unaccent (migration 00003) is a SQL function that PostgreSQL cannot
-- inline: it is declared IMMUTABLE and calls unaccent, which is STABLE, so
-- every call runs the executor for its one SELECT (about 3 µs against
-- 0.2 µs for unaccent itself). A search calls it about 31 times (the
-- recheck of a name prefix and the keys of each row returned), which was
-- 14% of PostgreSQL's time per search. The same body in PL/pgSQL is a
-- simple expression, evaluated without the executor: about 1.1 µs per
-- call; PostgreSQL's CPU per search fell 7% (search at 150/s on the
-- benchmark stack, three alternations). The function keeps its OID and
-- returns the same text, so the indexes and generated columns over it
-- stay valid.

-- +goose Up
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION f_unaccent(text) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE STRICT AS $$
BEGIN
    RETURN public.unaccent('public.unaccent'::regdictionary, $1);
END;
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION f_unaccent(text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$
    SELECT public.unaccent('public.unaccent'::regdictionary, $1)
$$;
-- +goose StatementEnd
