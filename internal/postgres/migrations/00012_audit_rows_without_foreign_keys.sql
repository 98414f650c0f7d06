-- Every audited request (every request) inserts an audit row, and each row
-- paid two foreign-key checks, to users (actor_id) and to patients
-- (patient_id): two index lookups and a FOR KEY SHARE lock on the user's and
-- the patient's rows. Measured on the 1,000,000-patient benchmark database:
-- 29 µs per row with the keys, 10 µs without (20,000 rows), and with many
-- concurrent requests by one user every lock on that user's row became a
-- MultiXact.
--
-- What the keys guaranteed is that an audit row never names a user or a
-- patient that does not exist. The ids come from the signed-in session and
-- from the record just read or written in the same transaction, so the
-- remaining way to break that is deleting a user or patient that audit rows
-- name. These triggers refuse exactly that (users are deactivated and
-- patients merged instead, as before), checked at the rare delete instead of
-- at every insert. A restore (session_replication_role = replica) skips them
-- as it skipped the keys.

-- +goose Up
ALTER TABLE audit_events DROP CONSTRAINT audit_events_actor_id_fkey,
                         DROP CONSTRAINT audit_events_patient_id_fkey;

-- +goose StatementBegin
CREATE FUNCTION audit_keep_named() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (TG_TABLE_NAME = 'users' AND EXISTS (SELECT 1 FROM audit_events WHERE actor_id = OLD.id))
       OR (TG_TABLE_NAME = 'patients' AND EXISTS (SELECT 1 FROM audit_events WHERE patient_id = OLD.id)) THEN
        RAISE EXCEPTION 'audit rows name % %: it cannot be deleted', TG_TABLE_NAME, OLD.id
            USING ERRCODE = 'foreign_key_violation',
                  HINT = 'Deactivate the user or merge the patient instead.';
    END IF;
    RETURN OLD;
END $$;
-- +goose StatementEnd

CREATE TRIGGER users_audit_named BEFORE DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION audit_keep_named();
CREATE TRIGGER patients_audit_named BEFORE DELETE ON patients
    FOR EACH ROW EXECUTE FUNCTION audit_keep_named();

-- +goose Down
DROP TRIGGER patients_audit_named ON patients;
DROP TRIGGER users_audit_named ON users;
DROP FUNCTION audit_keep_named();
ALTER TABLE audit_events ADD CONSTRAINT audit_events_actor_id_fkey FOREIGN KEY (actor_id) REFERENCES users (id) NOT VALID,
                         ADD CONSTRAINT audit_events_patient_id_fkey FOREIGN KEY (patient_id) REFERENCES patients (id) NOT VALID;
