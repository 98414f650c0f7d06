-- name: IdempotencyClaim :execrows
-- Claims a key for this request. When another request holds the key, the
-- insert waits for it to commit or roll back, then does nothing.
INSERT INTO idempotency_keys (actor_id, key, fingerprint) VALUES ($1, $2, $3)
ON CONFLICT (actor_id, key) DO NOTHING;

-- name: IdempotencyGet :one
SELECT fingerprint, response FROM idempotency_keys WHERE actor_id = $1 AND key = $2;

-- name: IdempotencyStore :exec
UPDATE idempotency_keys SET response = $3 WHERE actor_id = $1 AND key = $2;

-- name: IdempotencyExpire :execrows
DELETE FROM idempotency_keys WHERE created_at < $1;
