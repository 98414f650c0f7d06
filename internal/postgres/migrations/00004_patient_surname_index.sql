-- A receptionist types a surname: one-word searches are prefix matches on
-- the unaccented family name, read in order from this index (a handful of
-- index pages instead of scoring thousands of trigram candidates). The "C"
-- collation lets one btree serve both LIKE 'prefix%' and ORDER BY, whatever
-- the database's default collation is.

-- +goose Up
CREATE INDEX patients_family_unaccent_idx ON patients
    ((lower(f_unaccent(family_name)) COLLATE "C"), (lower(f_unaccent(given_names)) COLLATE "C"), id) WHERE active;

-- +goose Down
DROP INDEX patients_family_unaccent_idx;
