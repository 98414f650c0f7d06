-- admissions.appointment_id had no index: deleting an appointment checked
-- every admission for a reference to it (found when the benchmark removed
-- its own bookings: minutes for a few thousand rows).

-- +goose Up
CREATE INDEX admissions_appointment_idx ON admissions (appointment_id) WHERE appointment_id IS NOT NULL;

-- +goose Down
DROP INDEX admissions_appointment_idx;
