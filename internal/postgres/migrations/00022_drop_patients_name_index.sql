-- patients_name_idx (migration 00001) was meant for the registry's list in
-- name order, but its text_pattern_ops order is not the order that list
-- asked for (lower(name) in the database's collation), so no query used it
-- (0 scans over a whole benchmark run) while every registration and name
-- change paid for it (66 MB on a million patients), and the list sorted the
-- whole registry for every page (1 s). The list now reads
-- patients_family_unaccent_idx (migration 00004), in the order the surname
-- search uses.

-- +goose Up
DROP INDEX patients_name_idx;

-- +goose Down
CREATE INDEX patients_name_idx ON patients (lower(family_name) text_pattern_ops, lower(given_names), id);
