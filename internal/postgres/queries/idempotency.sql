-- name: IdempotencyRecord :exec
-- Records a command's key and response in the command's transaction, with
-- its COMMIT (postgres.atCommit). When another request holds the key, the
-- insert waits for it; if that one committed, the primary key refuses this
-- one and nothing of this transaction commits.
INSERT INTO idempotency_keys (actor_id, key, fingerprint, response) VALUES ($1, $2, $3, $4);

-- name: IdempotencyGet :one
SELECT fingerprint, response FROM idempotency_keys WHERE actor_id = $1 AND key = $2;

-- name: IdempotencyExpire :execrows
DELETE FROM idempotency_keys WHERE created_at < $1;
