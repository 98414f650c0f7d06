-- name: AuditInsert :exec
INSERT INTO audit_events (actor_id, actor_role, action, resource_type, resource_id, patient_id, outcome,
                          request_id, client_ip, user_agent, details)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11);

-- name: AuditCountForPatient :one
SELECT count(*) FROM audit_events WHERE patient_id = $1 AND action = $2;

-- name: AuditSeal :one
SELECT audit_seal(sqlc.arg(max_rows)::int)::int AS sealed;

-- name: AuditLastBlockEnd :one
-- Where the sealed chain ends: the last block's last row in seal order.
SELECT coalesce((SELECT b.to_xid FROM audit_blocks b ORDER BY b.seq DESC LIMIT 1), '0'::xid8)::xid8 AS xact_id,
       coalesce((SELECT b.to_id FROM audit_blocks b ORDER BY b.seq DESC LIMIT 1), 0::bigint)::bigint AS id;

-- name: AuditUnsealedCount :one
-- Rows not yet in a block (the window the chain does not cover yet) and how
-- long the oldest has waited: the rows after the chain's end
-- (AuditLastBlockEnd), walked on the seal index. The end is passed in, not
-- read in the same query: PostgreSQL plans an unnamed statement knowing its
-- arguments, so it sees that few rows follow and uses the index, whereas a
-- bound read by a subquery is unknown when planning and, on the benchmark's
-- 13 million rows, got a parallel scan of the whole table (4 s, every
-- second).
SELECT count(*)::bigint AS unsealed, coalesce(extract(epoch FROM now() - min(e.occurred_at)), 0)::float8 AS oldest_seconds
FROM audit_events e
WHERE (e.xact_id, e.id) > (sqlc.arg(after_xact_id)::xid8, sqlc.arg(after_id)::bigint);

-- name: AuditBlocks :many
SELECT * FROM audit_blocks WHERE seq > sqlc.arg(after_seq) ORDER BY seq LIMIT sqlc.arg(lim);

-- name: AuditBlockHeaders :many
-- Blocks without the ids they list: the background verifier checks the
-- links of its whole window every run and reads rows only for the blocks
-- it re-hashes.
SELECT seq, row_count, prev_hash, hash FROM audit_blocks WHERE seq > sqlc.arg(after_seq) ORDER BY seq LIMIT sqlc.arg(lim);

-- name: AuditBlockRows :many
-- The rows a block covers, with their stored hashes and what the hash
-- covers; the verifier computes the hash itself (audit.rowHash) instead of
-- trusting the database's function, and the database's CPU is spared the
-- formatting and SHA-256 of every row (6.6 s of it per 1,000 blocks on the
-- benchmark data). jsonb's text form is the database's own, so details
-- comes as text. The plain bounds on xact_id repeat what the row
-- comparisons say: the planner cannot estimate row comparisons and, with
-- them alone, scanned the whole table for every block verified.
SELECT e.id, e.row_hash, e.occurred_at, e.actor_id, e.actor_role, e.action, e.resource_type, e.resource_id,
       e.patient_id, e.outcome, e.request_id, e.client_ip, e.user_agent, e.details::text AS details, e.xact_id
FROM audit_events e
WHERE e.xact_id BETWEEN sqlc.arg(from_xid)::xid8 AND sqlc.arg(to_xid)::xid8
  AND (e.xact_id, e.id) > (sqlc.arg(from_xid)::xid8, sqlc.arg(from_id)::bigint)
  AND (e.xact_id, e.id) <= (sqlc.arg(to_xid)::xid8, sqlc.arg(to_id)::bigint)
ORDER BY e.xact_id, e.id;

-- name: AuditSearch :many
-- The audit report. Sorting is by a key from an allow-list, mapped to
-- CASE branches here, never to SQL text built from input.
SELECT e.id, e.occurred_at, e.actor_id, coalesce(u.username, '') AS actor_username, e.actor_role, e.action,
       e.resource_type, e.resource_id, e.patient_id, e.outcome, e.request_id, e.client_ip, e.user_agent, e.details
FROM audit_events e
LEFT JOIN users u ON u.id = e.actor_id
WHERE e.occurred_at >= sqlc.arg(from_time)::timestamptz
  AND e.occurred_at < sqlc.arg(to_time)::timestamptz
  AND (sqlc.narg(actor_id)::uuid IS NULL OR e.actor_id = sqlc.narg(actor_id)::uuid)
  AND (sqlc.narg(patient_id)::uuid IS NULL OR e.patient_id = sqlc.narg(patient_id)::uuid)
  AND (sqlc.narg(action)::text IS NULL OR e.action = sqlc.narg(action)::text)
  AND (sqlc.narg(outcome)::text IS NULL OR e.outcome = sqlc.narg(outcome)::text)
ORDER BY
  CASE WHEN sqlc.arg(sort)::text = 'time' THEN e.occurred_at END ASC,
  CASE WHEN sqlc.arg(sort)::text = '-time' THEN e.occurred_at END DESC,
  CASE WHEN sqlc.arg(sort)::text = 'action' THEN e.action END ASC,
  CASE WHEN sqlc.arg(sort)::text = '-action' THEN e.action END DESC,
  CASE WHEN sqlc.arg(sort)::text = 'actor' THEN u.username END ASC,
  CASE WHEN sqlc.arg(sort)::text = '-actor' THEN u.username END DESC,
  CASE WHEN sqlc.arg(sort)::text = 'outcome' THEN e.outcome END ASC,
  CASE WHEN sqlc.arg(sort)::text = '-outcome' THEN e.outcome END DESC,
  CASE WHEN sqlc.arg(sort)::text = 'resource' THEN e.resource_type END ASC,
  CASE WHEN sqlc.arg(sort)::text = '-resource' THEN e.resource_type END DESC,
  e.occurred_at DESC, e.id DESC
LIMIT sqlc.arg(lim) OFFSET sqlc.arg(off);

-- name: AuditHead :one
SELECT hash FROM audit_blocks ORDER BY seq DESC LIMIT 1;

-- name: AuditCopy :copyfrom
-- Many audit rows in one statement: reads group-committed (audit.Batcher).
INSERT INTO audit_events (actor_id, actor_role, action, resource_type, resource_id, patient_id, outcome,
                          request_id, client_ip, user_agent, details)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11);

-- name: AuditBlockLastSeq :one
SELECT coalesce(max(seq), 0)::bigint AS seq FROM audit_blocks;

-- name: AuditPartitionsEnsure :one
-- Creates the month partitions of audit_events missing from this month to
-- months_ahead ahead (migration 00016); returns how many it created.
SELECT audit_partitions_ensure(sqlc.arg(months_ahead)::int)::int AS created;

-- name: AuditArchives :many
-- The archived partitions (migration 00021), whose blocks' rows are not
-- online to verify.
SELECT * FROM audit_archives ORDER BY first_block NULLS FIRST, partition;

-- name: AuditArchivePlan :one
SELECT p.bound::text AS bound, p.first_block, p.last_block, p.row_count::bigint AS row_count
FROM audit_archive_plan(sqlc.arg(partition)::text) p;

-- name: AuditArchive :one
SELECT * FROM audit_archive(sqlc.arg(partition)::text, sqlc.narg(first_block)::bigint, sqlc.narg(last_block)::bigint,
                            sqlc.arg(row_count)::bigint);

-- name: AuditUnarchive :one
SELECT * FROM audit_unarchive(sqlc.arg(partition)::text);
