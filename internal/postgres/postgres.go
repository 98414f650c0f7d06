// Package postgres owns the connection pool, the one transaction helper with
// bounded retry, the embedded migrations and the translation of driver errors
// into hospital errors. Queries live in queries/*.sql and are compiled by sqlc
// into dbgen.
//
// Everything here works through PgBouncer in transaction pooling mode: no
// named prepared statements that outlive a transaction, no session SET (only
// SET LOCAL), no LISTEN/NOTIFY, no session advisory locks.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hospital-erp/hospital-erp/internal/hospital"
	"github.com/hospital-erp/hospital-erp/internal/postgres/dbgen"
)

// DB is the application's handle on PostgreSQL (through PgBouncer).
type DB struct {
	Pool             *pgxpool.Pool
	statementTimeout time.Duration
	acquireTimeout   time.Duration
	maxAttempts      int
	onRetry          func()
}

// Options tune Open.
type Options struct {
	MaxConns         int32
	StatementTimeout time.Duration
	// ConnectTimeout bounds how long Open waits for the first connection.
	ConnectTimeout time.Duration
	// AcquireTimeout bounds how long a statement or transaction waits for
	// a free connection of the pool (zero: as long as its context lets
	// it). Past it, the work is refused with ErrBusy, so that an overload
	// sheds work at once instead of queueing it until every request's
	// deadline.
	AcquireTimeout time.Duration
	// OnRetry is called each time InTx retries a transaction (metrics).
	OnRetry func()
}

// PoolConfig parses url into a pool configuration that works through
// PgBouncer in transaction pooling mode.
func PoolConfig(url string, o Options) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	// CacheDescribe uses unnamed statements only, so a statement never
	// outlives the server connection PgBouncer lent us for one transaction.
	// (The default, CacheStatement, fails with "prepared statement already exists".)
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeCacheDescribe
	// A cancelled context closes the connection by deadline instead of sending
	// a CancelRequest: PgBouncer 1.18 crashes on cancel requests under load.
	cfg.ConnConfig.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.DeadlineContextWatcherHandler{Conn: c.Conn()}
	}
	cfg.AfterConnect = encodeUUIDs
	if o.MaxConns > 0 {
		cfg.MaxConns = o.MaxConns
	}
	cfg.MaxConnIdleTime = 5 * time.Minute
	cfg.HealthCheckPeriod = 15 * time.Second
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	return cfg, nil
}

// Open connects to url and waits up to o.ConnectTimeout for the server.
func Open(ctx context.Context, url string, o Options) (*DB, error) {
	cfg, err := PoolConfig(url, o)
	if err != nil {
		return nil, err
	}
	// NewWithConfig, not New(cfg.ConnString()): the latter re-parses the string
	// and silently drops the settings made above.
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("create pool: %w", err)
	}
	if o.OnRetry == nil {
		o.OnRetry = func() {}
	}
	db := &DB{Pool: pool, statementTimeout: o.StatementTimeout, acquireTimeout: o.AcquireTimeout, maxAttempts: 4, onRetry: o.OnRetry}
	if err := waitFor(ctx, o.ConnectTimeout, pool.Ping); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	return db, nil
}

func waitFor(ctx context.Context, limit time.Duration, ping func(context.Context) error) error {
	deadline := time.Now().Add(limit)
	for {
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err := ping(pctx)
		cancel()
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Close closes the pool.
func (db *DB) Close() { db.Pool.Close() }

// Queries returns queries that run outside any transaction (single statements).
func (db *DB) Queries() *dbgen.Queries {
	if db.acquireTimeout <= 0 {
		return dbgen.New(db.Pool)
	}
	return dbgen.New(boundedPool{db})
}

// ErrBusy is returned when no connection of the pool came free within
// Options.AcquireTimeout; Translate makes it a 503 with Retry-After.
var ErrBusy = errors.New("no database connection came free in time")

// acquire takes a connection of the pool, waiting at most acquireTimeout.
func (db *DB) acquire(ctx context.Context) (*pgxpool.Conn, error) {
	if db.acquireTimeout <= 0 {
		return db.Pool.Acquire(ctx)
	}
	actx, cancel := context.WithTimeoutCause(ctx, db.acquireTimeout, ErrBusy)
	defer cancel()
	conn, err := db.Pool.Acquire(actx)
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(actx), ErrBusy) {
		return nil, fmt.Errorf("%w (waited %v)", ErrBusy, db.acquireTimeout)
	}
	return conn, err
}

// boundedPool runs single statements as the pool does (dbgen.DBTX), but
// takes their connection with acquire.
type boundedPool struct{ db *DB }

func (p boundedPool) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	conn, err := p.db.acquire(ctx)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	defer conn.Release()
	return conn.Exec(ctx, sql, args...)
}

func (p boundedPool) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	conn, err := p.db.acquire(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		conn.Release()
		return nil, err
	}
	return &releasingRows{Rows: rows, conn: conn}, nil
}

func (p boundedPool) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	conn, err := p.db.acquire(ctx)
	if err != nil {
		return errRow{err}
	}
	return releasingRow{row: conn.QueryRow(ctx, sql, args...), conn: conn}
}

func (p boundedPool) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	conn, err := p.db.acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Release()
	return conn.CopyFrom(ctx, table, columns, src)
}

// releasingRows gives the connection back once the rows are read or closed.
type releasingRows struct {
	pgx.Rows
	conn *pgxpool.Conn
}

func (r *releasingRows) Next() bool {
	if r.Rows.Next() {
		return true
	}
	r.release()
	return false
}

func (r *releasingRows) Close() {
	r.Rows.Close()
	r.release()
}

func (r *releasingRows) release() {
	if r.conn != nil {
		r.Rows.Close()
		r.conn.Release()
		r.conn = nil
	}
}

// releasingRow gives the connection back once the row is scanned.
type releasingRow struct {
	row  pgx.Row
	conn *pgxpool.Conn
}

func (r releasingRow) Scan(dest ...any) error {
	defer r.conn.Release()
	return r.row.Scan(dest...)
}

// TxOptions choose the isolation level and access mode of InTxOpts.
type TxOptions = pgx.TxOptions

// InTx runs fn in a READ COMMITTED transaction. See InTxOpts.
func (db *DB) InTx(ctx context.Context, fn func(q *dbgen.Queries) error) error {
	return db.InTxOpts(ctx, pgx.TxOptions{}, fn)
}

// InTxOpts runs fn in a transaction with the statement timeout set by
// SET LOCAL. The whole transaction is retried, a bounded number of times
// with jittered back-off, when it certainly did not commit:
//   - on serialization failure (40001) and deadlock (40P01), which roll it back;
//   - when beginning it failed (BEGIN changes nothing, whether or not it
//     reached the server);
//   - when the connection broke before COMMIT was sent (PostgreSQL rolls back
//     the transaction of a lost session; PgBouncer closes the client when its
//     server connection dies).
//
// A connection lost while COMMIT is in flight is never retried: the
// transaction may have committed, so the caller gets EUNAVAILABLE and a
// client retries with its Idempotency-Key instead. fn must have no effects
// outside the transaction.
func (db *DB) InTxOpts(ctx context.Context, opts pgx.TxOptions, fn func(q *dbgen.Queries) error) error {
	var err error
	for attempt := 1; ; attempt++ {
		err = db.runTx(ctx, opts, fn)
		if err == nil || attempt >= db.maxAttempts || !retryable(err) || ctx.Err() != nil {
			break
		}
		db.onRetry()
		backoff := time.Duration(attempt*attempt)*5*time.Millisecond + time.Duration(rand.IntN(10))*time.Millisecond
		select {
		case <-ctx.Done():
			return Translate(ctx.Err())
		case <-time.After(backoff):
		}
	}
	return Translate(err)
}

func (db *DB) runTx(ctx context.Context, opts pgx.TxOptions, fn func(q *dbgen.Queries) error) (err error) {
	// BEGIN, the transaction's statement time-out and the acting user that
	// history triggers record (hospital.actor_id) are not a round trip of
	// their own: they travel with the transaction's first statement.
	begin := opts.BeginQuery
	if begin == "" {
		begin = beginSQL(opts)
	}
	tx := &txConn{begin: []queuedStatement{{sql: begin}}}
	var timeout, actor string
	if db.statementTimeout > 0 {
		timeout = strconv.FormatInt(db.statementTimeout.Milliseconds(), 10)
	}
	if a := hospital.ActorFrom(ctx); a != nil {
		if id, err := uuid.Parse(a.UserID); err == nil {
			actor = id.String()
		}
	}
	if set := settings(timeout, actor); set.sql != "" {
		tx.begin = append(tx.begin, set)
	}
	conn, err := db.acquire(ctx)
	if err != nil {
		return notCommitted{err}
	}
	// A connection still in a transaction when released (a failed
	// ROLLBACK) is closed by the pool, not reused.
	defer conn.Release()
	tx.Conn = conn
	defer func() {
		if err == nil {
			return
		}
		var pending commitError
		if errors.As(err, &pending) {
			err = pending.error
			return
		}
		lost := conn.Conn().IsClosed()
		if tx.begin == nil { // BEGIN was sent
			// Rollback on a broken connection fails too; the pool discards it.
			_, _ = conn.Exec(context.WithoutCancel(ctx), "ROLLBACK")
		}
		if lost {
			err = notCommitted{err}
		}
	}()
	if err = fn(dbgen.New(tx)); err != nil {
		return err
	}
	return tx.commit(ctx)
}

// settings is the one statement that sets a transaction's statement
// time-out and acting user, those of the two that are not empty: one
// statement to parse and run instead of two (SET LOCAL and set_config
// with true are the same).
func settings(timeout, actor string) queuedStatement {
	switch {
	case timeout != "" && actor != "":
		return queuedStatement{sql: "SELECT set_config('statement_timeout', $1, true), set_config('hospital.actor_id', $2, true)",
			args: []any{timeout, actor}}
	case timeout != "":
		return queuedStatement{sql: "SELECT set_config('statement_timeout', $1, true)", args: []any{timeout}}
	case actor != "":
		return queuedStatement{sql: "SELECT set_config('hospital.actor_id', $1, true)", args: []any{actor}}
	}
	return queuedStatement{}
}

// atCommit names the statements a transaction sends with its COMMIT, in one
// round trip, instead of when they are called: writes whose results nobody
// reads, made last by every command — its audit row and its idempotency
// record. Each round trip through PgBouncer costs the backend, PgBouncer
// and PostgreSQL about as much CPU as a simple statement's work; these two
// were a quarter of a booking's round trips. They still belong to the
// transaction: if one fails, nothing commits and the caller gets its error.
// Matched on sqlc's "-- name:" line, which starts each generated query.
var atCommit = []string{"-- name: AuditInsert :exec", "-- name: IdempotencyRecord :exec"}

// txConn is one transaction's connection, as the queries see it
// (dbgen.DBTX). The statements that begin the transaction wait in begin
// and go with the first statement, in one round trip (a batch ends with
// one Sync: when BEGIN fails the statement is skipped); the statements of
// atCommit wait in queued and go with COMMIT.
type txConn struct {
	*pgxpool.Conn
	begin  []queuedStatement // nil once sent
	queued []queuedStatement
}

type queuedStatement struct {
	sql  string
	args []any
}

// withBegin sends the pending BEGIN statements followed by sql and returns
// the batch positioned at sql's result. Without pending statements it
// returns nil and sql is the caller's to send.
func (t *txConn) withBegin(ctx context.Context, sql string, args []any) (pgx.BatchResults, error) {
	if t.begin == nil {
		return nil, nil
	}
	b := &pgx.Batch{}
	for _, q := range t.begin {
		b.Queue(q.sql, q.args...)
	}
	if sql != "" {
		b.Queue(sql, args...)
	}
	n := len(t.begin)
	t.begin = nil
	br := t.Conn.SendBatch(ctx, b)
	for range n {
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			return nil, err
		}
	}
	return br, nil
}

// Exec runs sql now (with BEGIN if not yet sent), or queues it for the
// COMMIT round trip (atCommit).
func (t *txConn) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	for _, name := range atCommit {
		if strings.HasPrefix(sql, name) {
			t.queued = append(t.queued, queuedStatement{sql: sql, args: args})
			return pgconn.CommandTag{}, nil
		}
	}
	br, err := t.withBegin(ctx, sql, args)
	switch {
	case err != nil:
		return pgconn.CommandTag{}, err
	case br == nil:
		return t.Conn.Exec(ctx, sql, args...)
	}
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return tag, err
}

// Query runs sql (with BEGIN if not yet sent).
func (t *txConn) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	br, err := t.withBegin(ctx, sql, args)
	switch {
	case err != nil:
		return nil, err
	case br == nil:
		return t.Conn.Query(ctx, sql, args...)
	}
	rows, err := br.Query()
	if err != nil {
		_ = br.Close()
		return nil, err
	}
	return &batchRows{Rows: rows, br: br}, nil
}

// QueryRow runs sql (with BEGIN if not yet sent).
func (t *txConn) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	br, err := t.withBegin(ctx, sql, args)
	switch {
	case err != nil:
		return errRow{err}
	case br == nil:
		return t.Conn.QueryRow(ctx, sql, args...)
	}
	return batchRow{row: br.QueryRow(), br: br}
}

// CopyFrom sends BEGIN on its own first if not yet sent: COPY cannot join
// a batch.
func (t *txConn) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	br, err := t.withBegin(ctx, "", nil)
	if err != nil {
		return 0, err
	}
	if br != nil {
		if err := br.Close(); err != nil {
			return 0, err
		}
	}
	return t.Conn.CopyFrom(ctx, table, columns, src)
}

// batchRows are a first statement's rows; closing them ends the batch.
type batchRows struct {
	pgx.Rows
	br  pgx.BatchResults
	err error
}

func (r *batchRows) Close() {
	r.Rows.Close()
	if r.br != nil {
		r.err = r.br.Close()
		r.br = nil
	}
}

func (r *batchRows) Err() error {
	if err := r.Rows.Err(); err != nil {
		return err
	}
	return r.err
}

// batchRow is a first statement's row; scanning it ends the batch.
type batchRow struct {
	row pgx.Row
	br  pgx.BatchResults
}

func (r batchRow) Scan(dest ...any) error {
	err := r.row.Scan(dest...)
	if cerr := r.br.Close(); err == nil {
		err = cerr
	}
	return err
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// commit sends the pending statements and COMMIT in one round trip. A
// statement's failure skips the rest (one Sync ends the batch), so nothing
// commits and the failure is returned; a lost connection while COMMIT may
// have run is a commitError (outcome unknown). A transaction that sent
// nothing sends nothing.
func (t *txConn) commit(ctx context.Context) error {
	if t.begin != nil && len(t.queued) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	for _, q := range append(t.begin, t.queued...) {
		b.Queue(q.sql, q.args...)
	}
	b.Queue("commit")
	n := len(t.begin) + len(t.queued)
	t.begin = nil
	br := t.Conn.SendBatch(ctx, b)
	for range n {
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			if isConnError(err) || t.Conn.Conn().IsClosed() {
				return commitError{err}
			}
			return err
		}
	}
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr):
		return err // the server refused to commit: nothing committed
	case err != nil:
		return commitError{err}
	case tag.String() == "ROLLBACK":
		return pgx.ErrTxCommitRollback
	}
	return nil
}

// beginSQL renders the BEGIN statement of opts.
func beginSQL(opts pgx.TxOptions) string {
	b := "BEGIN"
	if opts.IsoLevel != "" {
		b += " ISOLATION LEVEL " + string(opts.IsoLevel)
	}
	if opts.AccessMode != "" {
		b += " " + string(opts.AccessMode)
	}
	if opts.DeferrableMode != "" {
		b += " " + string(opts.DeferrableMode)
	}
	return b
}

// notCommitted marks a failure that certainly left nothing committed: the
// transaction never began, or its connection was lost before COMMIT.
type notCommitted struct{ error }

func (e notCommitted) Unwrap() error { return e.error }

// commitError is a failure of COMMIT itself, whose outcome may be unknown.
type commitError struct{ error }

func (e commitError) Unwrap() error { return e.error }

func retryable(err error) bool {
	if errors.Is(err, ErrBusy) {
		return false // it waited already; shedding load means not queueing again
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01") {
		return true
	}
	var nc notCommitted
	return errors.As(err, &nc)
}

// Ping checks that a query round-trips, through PgBouncer when configured so.
func (db *DB) Ping(ctx context.Context) error {
	var one int
	return db.Pool.QueryRow(ctx, "SELECT 1").Scan(&one)
}

// Execer runs a statement: a pool, a connection or a transaction.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Analyze gathers the planner's statistics of the tables the connected
// role may analyze (the others are skipped with a warning). Bulk loads
// (the demo hospital, seed, restore) end with it: until autovacuum's next
// analyze, up to a minute or more later, the planner sees the tables as
// migration left them, empty, and picked plans that cost seconds (the
// typo search joined every family name with every given name of the
// name dictionary), enough to time out every search of the first minute.
func Analyze(ctx context.Context, db Execer) error {
	if _, err := db.Exec(ctx, "ANALYZE"); err != nil {
		return fmt.Errorf("analyze: %w", err)
	}
	return nil
}

// Translate turns driver errors into hospital errors once, so services and
// handlers never look at SQLSTATEs. Errors that already are *hospital.Error
// pass through unchanged.
func Translate(err error) error {
	if err == nil {
		return nil
	}
	var he *hospital.Error
	if errors.As(err, &he) {
		return err
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return hospital.Wrap(hospital.ENOTFOUND, err, "Not found.")
	}
	if errors.Is(err, ErrBusy) {
		return &hospital.Error{Code: hospital.EUNAVAILABLE, RetryAfter: time.Second, Err: err,
			Message: "The system is busy just now; please retry in a moment."}
	}
	if errors.Is(err, context.Canceled) {
		return hospital.Wrap(hospital.EUNAVAILABLE, err, "The request was cancelled.")
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return hospital.Wrap(hospital.EUNAVAILABLE, err, "The database did not answer in time; please retry.")
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23505":
			return hospital.Wrap(hospital.ECONFLICT, err, "This record already exists (%s).", pgErr.ConstraintName)
		case "23P01":
			return hospital.Wrap(hospital.ECONFLICT, err, "This conflicts with an existing record (%s).", pgErr.ConstraintName)
		case "23503":
			return hospital.Wrap(hospital.EINVALID, err, "A referenced record does not exist (%s).", pgErr.ConstraintName)
		case "23514", "23502", "22001", "22007", "22008", "22P02":
			return hospital.Wrap(hospital.EINVALID, err, "A value is not allowed (%s).", pgErr.ConstraintName)
		case "22021", "22P05": // text the database cannot store: a NUL character, bytes that are not UTF-8
			return hospital.Wrap(hospital.EINVALID, err, "The text holds a character that cannot be stored (such as NUL).")
		case "40001", "40P01":
			return hospital.Wrap(hospital.ECONFLICT, err, "A concurrent change got in the way; please retry.")
		case "57014", "55P03":
			return hospital.Wrap(hospital.EUNAVAILABLE, err, "The database did not answer in time; please retry.")
		case "57P01", "57P02", "57P03", "53300", "08000", "08003", "08006",
			"08P01": // PgBouncer reports its own refusals (query_wait_timeout, pool full) as 08P01
			return hospital.Wrap(hospital.EUNAVAILABLE, err, "The database is unavailable; please retry.")
		}
		return err
	}
	if pgconn.Timeout(err) || isConnError(err) {
		return hospital.Wrap(hospital.EUNAVAILABLE, err, "The database is unavailable; please retry.")
	}
	return err
}

func isConnError(err error) bool {
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || pgconn.SafeToRetry(err)
}

// Raised returns the message of an error a PL/pgSQL function raised
// itself (RAISE EXCEPTION), which says what it refused and why.
func Raised(err error) (string, bool) {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && strings.Contains(pgErr.Where, "at RAISE") {
		return pgErr.Message, true
	}
	return "", false
}

// Constraint returns the name of the constraint a database error names
// (a unique index, a check, or a trigger's CONSTRAINT), or "".
func Constraint(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.ConstraintName
	}
	return ""
}
