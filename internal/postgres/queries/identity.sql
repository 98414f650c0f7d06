-- name: UserCreate :one
INSERT INTO users (username, display_name, role, department_id, password_hash)
VALUES ($1, $2, $3, $4, $5) RETURNING *;

-- name: UserGetByUsername :one
SELECT * FROM users WHERE username = $1;

-- name: UserGet :one
SELECT * FROM users WHERE id = $1;

-- name: UserCount :one
SELECT count(*) FROM users;

-- name: SessionCreate :one
INSERT INTO sessions (user_id, expires_at, client_ip, user_agent, mfa_verified)
VALUES ($1, $2, $3, $4, $5) RETURNING *;

-- name: SessionGet :one
-- The session with its user, for authenticating a request.
SELECT s.id, s.user_id, s.created_at, s.last_seen_at, s.expires_at, s.revoked_at, s.mfa_verified,
       u.username, u.display_name, u.role, u.department_id, u.active, (u.mfa_enabled_at IS NOT NULL)::bool AS mfa_enabled,
       coalesce((SELECT array_agg(w.ward_id ORDER BY w.ward_id) FROM user_wards w WHERE w.user_id = u.id), '{}')::uuid[] AS ward_ids
FROM sessions s JOIN users u ON u.id = s.user_id
WHERE s.id = $1;

-- name: SessionTouch :exec
UPDATE sessions SET last_seen_at = now()
WHERE id = $1 AND revoked_at IS NULL AND last_seen_at < now() - interval '30 seconds';

-- name: SessionRevoke :execrows
UPDATE sessions SET revoked_at = now(), revoke_reason = $2
WHERE id = $1 AND revoked_at IS NULL;

-- name: RefreshTokenCreate :exec
INSERT INTO refresh_tokens (token_hash, session_id) VALUES ($1, $2);

-- name: RefreshTokenUse :one
-- Marks the token used and returns its session, and whether and how
-- recently it had been used before (reuse detection, with a grace period
-- for two frontend pods refreshing the same token at once).
WITH old AS (
    SELECT o.token_hash AS hash, o.used_at FROM refresh_tokens o WHERE o.token_hash = sqlc.arg(token_hash)::bytea FOR UPDATE
)
UPDATE refresh_tokens r SET used_at = coalesce(r.used_at, now())
FROM old
WHERE r.token_hash = old.hash
RETURNING r.session_id,
          (old.used_at IS NOT NULL)::bool AS reused,
          (old.used_at IS NOT NULL AND now() - old.used_at < make_interval(secs => sqlc.arg(grace_seconds)::float8))::bool AS within_grace;

-- name: UserList :many
SELECT u.*, coalesce((SELECT array_agg(w.ward_id ORDER BY w.ward_id) FROM user_wards w WHERE w.user_id = u.id), '{}')::uuid[] AS ward_ids
FROM users u
WHERE (sqlc.narg(prefix)::text IS NULL OR u.username LIKE sqlc.narg(prefix)::text || '%' OR lower(u.display_name) LIKE '%' || lower(sqlc.narg(prefix)::text) || '%')
  AND (sqlc.narg(role)::text IS NULL OR u.role = sqlc.narg(role)::text)
  AND (sqlc.narg(active)::bool IS NULL OR u.active = sqlc.narg(active)::bool)
  AND (sqlc.narg(after_username)::text IS NULL OR u.username > sqlc.narg(after_username)::text)
ORDER BY u.username
LIMIT sqlc.arg(lim);

-- name: UserWardIDs :many
SELECT ward_id FROM user_wards WHERE user_id = $1 ORDER BY ward_id;

-- name: UserWardsClear :exec
DELETE FROM user_wards WHERE user_id = $1;

-- name: UserWardAdd :exec
INSERT INTO user_wards (user_id, ward_id) VALUES ($1, $2) ON CONFLICT DO NOTHING;

-- name: UserUpdate :one
UPDATE users SET display_name = $3, role = $4, department_id = $5, version = version + 1, updated_at = now()
WHERE id = $1 AND version = $2
RETURNING *;

-- name: UserSetActive :one
UPDATE users SET active = $2, version = version + 1, updated_at = now() WHERE id = $1 RETURNING *;

-- name: UserSetPassword :exec
UPDATE users SET password_hash = $2, password_changed_at = now(), version = version + 1, updated_at = now() WHERE id = $1;

-- name: UserLoggedIn :exec
UPDATE users SET last_login_at = now() WHERE id = $1;

-- name: UserMFAPending :exec
UPDATE users SET mfa_pending_enc = $2 WHERE id = $1;

-- name: UserMFAEnable :exec
UPDATE users SET mfa_secret_enc = mfa_pending_enc, mfa_pending_enc = NULL, mfa_enabled_at = now(), mfa_last_step = $2,
    version = version + 1, updated_at = now()
WHERE id = $1 AND mfa_pending_enc IS NOT NULL;

-- name: UserMFADisable :exec
UPDATE users SET mfa_secret_enc = NULL, mfa_pending_enc = NULL, mfa_enabled_at = NULL, mfa_last_step = 0,
    version = version + 1, updated_at = now()
WHERE id = $1;

-- name: UserMFAUseStep :execrows
-- Records a used TOTP time step; a step at or before the last used one is
-- refused, so a code cannot be replayed.
UPDATE users SET mfa_last_step = $2 WHERE id = $1 AND mfa_last_step < $2;

-- name: RecoveryCodesClear :exec
DELETE FROM mfa_recovery_codes WHERE user_id = $1;

-- name: RecoveryCodeAdd :exec
INSERT INTO mfa_recovery_codes (user_id, code_hash) VALUES ($1, $2);

-- name: RecoveryCodeUse :execrows
UPDATE mfa_recovery_codes SET used_at = now() WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL;

-- name: RecoveryCodesLeft :one
SELECT count(*) FROM mfa_recovery_codes WHERE user_id = $1 AND used_at IS NULL;

-- name: SessionMarkMFA :exec
UPDATE sessions SET mfa_verified = true WHERE id = $1;

-- name: SessionsRevokeForUser :many
UPDATE sessions SET revoked_at = now(), revoke_reason = $2
WHERE user_id = $1 AND revoked_at IS NULL AND (sqlc.narg(except_id)::uuid IS NULL OR id <> sqlc.narg(except_id)::uuid)
RETURNING id;

-- name: SessionIDsForUser :many
SELECT id FROM sessions WHERE user_id = $1 AND revoked_at IS NULL;
