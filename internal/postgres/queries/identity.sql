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
INSERT INTO sessions (user_id, expires_at, client_ip, user_agent)
VALUES ($1, $2, $3, $4) RETURNING *;

-- name: SessionGet :one
-- The session with its user, for authenticating a request.
SELECT s.id, s.user_id, s.created_at, s.last_seen_at, s.expires_at, s.revoked_at,
       u.username, u.display_name, u.role, u.department_id, u.active
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
-- Marks the token used and returns its session. A token that was already
-- used comes back with used_at set (the caller revokes the session).
UPDATE refresh_tokens r SET used_at = coalesce(r.used_at, now())
WHERE r.token_hash = $1
RETURNING r.session_id, (r.used_at <> now())::bool AS reused;
