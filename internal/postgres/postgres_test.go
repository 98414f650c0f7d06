package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/hospital-erp/hospital-erp/internal/chaos"
	"github.com/hospital-erp/hospital-erp/internal/hospital"
	"github.com/hospital-erp/hospital-erp/internal/postgres"
	"github.com/hospital-erp/hospital-erp/internal/postgres/dbgen"
	"github.com/hospital-erp/hospital-erp/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// 200 concurrent transactions through PgBouncer (transaction pooling, a
// server pool of 5) must see no protocol or prepared-statement errors.
func TestConcurrentThroughPgBouncer(t *testing.T) {
	db, _ := testenv.OpenDB(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := db.InTx(ctx, func(q *dbgen.Queries) error {
				p, err := q.PatientCreate(ctx, dbgen.PatientCreateParams{
					FamilyName: fmt.Sprintf("Concurrent%03d", i), GivenNames: "Test", Sex: "unknown"})
				if err != nil {
					return err
				}
				got, err := q.PatientGet(ctx, p.ID)
				if err != nil {
					return err
				}
				if got.Mrn != p.Mrn {
					return fmt.Errorf("read back mrn %s, want %s", got.Mrn, p.Mrn)
				}
				return nil
			})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("transaction failed: %v", err)
		}
	}
	n, err := db.Queries().PatientCount(ctx)
	if err != nil || n != 200 {
		t.Fatalf("count = %d, %v; want 200", n, err)
	}
}

func TestTranslate(t *testing.T) {
	db, _ := testenv.OpenDB(t)
	ctx := context.Background()
	_, err := db.Queries().PatientGet(ctx, [16]byte{1})
	if code := hospital.ErrorCode(postgres.Translate(err)); code != hospital.ENOTFOUND {
		t.Fatalf("missing row: code %q, want not_found (%v)", code, err)
	}
	_, err = db.Queries().DepartmentCreate(ctx, dbgen.DepartmentCreateParams{Code: "bad code", Name: "x", Kind: "clinical"})
	if code := hospital.ErrorCode(postgres.Translate(err)); code != hospital.EINVALID {
		t.Fatalf("check violation: code %q, want invalid (%v)", code, err)
	}
	for range 2 {
		_, err = db.Queries().DepartmentCreate(ctx, dbgen.DepartmentCreateParams{Code: "CARD", Name: "Cardiology", Kind: "clinical"})
	}
	if code := hospital.ErrorCode(postgres.Translate(err)); code != hospital.ECONFLICT {
		t.Fatalf("unique violation: code %q, want conflict (%v)", code, err)
	}
	// An error from fn rolls the transaction back.
	sentinel := errors.New("stop")
	err = db.InTx(ctx, func(q *dbgen.Queries) error {
		if _, err := q.DepartmentCreate(ctx, dbgen.DepartmentCreateParams{Code: "NEURO", Name: "Neurology", Kind: "clinical"}); err != nil {
			return err
		}
		return sentinel
	})
	if !errors.Is(err, sentinel) {
		t.Fatalf("InTx returned %v, want the function's error", err)
	}
	deps, _ := db.Queries().DepartmentList(ctx)
	for _, d := range deps {
		if d.Code == "NEURO" {
			t.Fatal("rolled-back insert is visible")
		}
	}
}

func TestMRNCheckDigit(t *testing.T) {
	db, _ := testenv.OpenDB(t)
	ctx := context.Background()
	p, err := db.Queries().PatientCreate(ctx, dbgen.PatientCreateParams{FamilyName: "Luhn", GivenNames: "Test", Sex: "female"})
	if err != nil {
		t.Fatal(err)
	}
	if !luhnValid(p.Mrn) {
		t.Fatalf("MRN %s fails the Luhn check", p.Mrn)
	}
}

// New rows get time-ordered ids (migration 00019): version 7, the time
// of the insert in their first 48 bits, so that rows made one after
// another sort after one another; sessions keep random ids.
func TestNewRowsGetTimeOrderedIDs(t *testing.T) {
	db, _ := testenv.OpenDB(t)
	ctx := context.Background()
	q := db.Queries()
	msOf := func(id uuid.UUID) time.Time {
		b := id[:]
		ms := int64(b[0])<<40 | int64(b[1])<<32 | int64(b[2])<<24 | int64(b[3])<<16 | int64(b[4])<<8 | int64(b[5])
		return time.UnixMilli(ms)
	}
	var prev uuid.UUID
	for i := range 50 {
		before := time.Now().Truncate(time.Millisecond)
		p, err := q.PatientCreate(ctx, dbgen.PatientCreateParams{FamilyName: "Order", GivenNames: fmt.Sprint("Test ", i), Sex: "female"})
		if err != nil {
			t.Fatal(err)
		}
		if p.ID.Version() != 7 || p.ID.Variant() != uuid.RFC4122 {
			t.Fatalf("patient id %s: version %d, variant %v; want version 7 (RFC 9562)", p.ID, p.ID.Version(), p.ID.Variant())
		}
		if at := msOf(p.ID); at.Before(before.Add(-time.Second)) || at.After(time.Now().Add(time.Second)) {
			t.Fatalf("patient id %s says %v, inserted at %v", p.ID, at, before)
		}
		if prev != uuid.Nil && msOf(p.ID).Before(msOf(prev)) {
			t.Fatalf("id %s made after %s sorts before it", p.ID, prev)
		}
		prev = p.ID
	}
	var def string
	if err := db.Pool.QueryRow(ctx, "SELECT column_default FROM information_schema.columns WHERE table_name = 'sessions' AND column_name = 'id'").Scan(&def); err != nil {
		t.Fatal(err)
	}
	if def != "gen_random_uuid()" {
		t.Fatalf("sessions.id defaults to %s; a session id travels in tokens and stays random", def)
	}
}

func luhnValid(s string) bool {
	sum, dbl := 0, false
	for i := len(s) - 1; i >= 0; i-- {
		d := int(s[i] - '0')
		if dbl {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		dbl = !dbl
	}
	return sum%10 == 0
}

// Serializable transactions that conflict are retried as a whole and all
// end up committed.
func TestInTxRetriesSerializationFailures(t *testing.T) {
	_, d := testenv.OpenDB(t)
	var retries atomic.Int64
	db, err := postgres.Open(context.Background(), d.URL, postgres.Options{MaxConns: 10, StatementTimeout: 5 * time.Second,
		ConnectTimeout: 5 * time.Second, OnRetry: func() { retries.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	dep, err := db.Queries().DepartmentCreate(ctx, dbgen.DepartmentCreateParams{Code: "CTR", Name: "n0", Kind: "clinical"})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- db.InTxOpts(ctx, postgres.TxOptions{IsoLevel: "serializable"}, func(q *dbgen.Queries) error {
				// Read-modify-write of one row: concurrent runs conflict.
				deps, err := q.DepartmentList(ctx)
				if err != nil {
					return err
				}
				n := 0
				fmt.Sscanf(deps[0].Name, "n%d", &n)
				time.Sleep(20 * time.Millisecond)
				return q.DepartmentRename(ctx, dbgen.DepartmentRenameParams{ID: dep.ID, Name: fmt.Sprintf("n%d", n+1)})
			})
		}()
	}
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		if err != nil {
			failed++
			if hospital.ErrorCode(err) != hospital.ECONFLICT {
				t.Fatalf("unexpected error: %v", err)
			}
		}
	}
	deps, _ := db.Queries().DepartmentList(ctx)
	var n int
	fmt.Sscanf(deps[0].Name, "n%d", &n)
	if n != 8-failed {
		t.Fatalf("counter = %d after %d successful increments: lost updates", n, 8-failed)
	}
	if retries.Load() == 0 {
		t.Fatal("no transaction was retried; the test did not provoke a conflict")
	}
	t.Logf("%d retries, %d gave up after the bounded attempts", retries.Load(), failed)
}

func TestStatementTimeout(t *testing.T) {
	_, d := testenv.OpenDB(t)
	db, err := postgres.Open(context.Background(), d.URL, postgres.Options{MaxConns: 2, StatementTimeout: 100 * time.Millisecond,
		ConnectTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Without an acting user, and with one (both settings in one statement).
	user := hospital.WithActor(context.Background(), &hospital.Actor{UserID: uuid.NewString()})
	for _, ctx := range []context.Context{context.Background(), user} {
		err = db.InTx(ctx, func(q *dbgen.Queries) error {
			_, err := q.SleepForTest(ctx, 1)
			return err
		})
		if hospital.ErrorCode(err) != hospital.EUNAVAILABLE {
			t.Fatalf("slow statement: %v, want unavailable (statement timeout)", err)
		}
	}
	// The pool is still usable afterwards.
	if err := db.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// openVia opens a pool on d that reaches PgBouncer through a fault proxy,
// counting retries.
func openVia(t *testing.T, d testenv.Database, retries *atomic.Int64) (*postgres.DB, *chaos.Proxy) {
	t.Helper()
	u, err := url.Parse(d.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := chaos.StartProxy(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	u.Host = proxy.Addr()
	db, err := postgres.Open(context.Background(), u.String(), postgres.Options{MaxConns: 2, StatementTimeout: 5 * time.Second,
		ConnectTimeout: 5 * time.Second, OnRetry: func() { retries.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return db, proxy
}

func departments(t *testing.T, d testenv.Database, code string) int {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), d.DirectURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM departments WHERE code = $1", code).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// A connection lost in the middle of a transaction left nothing committed
// (the server rolls back a lost session), so InTx runs the whole
// transaction again: one row, written by the second attempt.
func TestInTxRetriesConnectionLostBeforeCommit(t *testing.T) {
	d := testenv.NewDatabase(t)
	var retries atomic.Int64
	db, proxy := openVia(t, d, &retries)
	ctx := context.Background()
	calls := 0
	err := db.InTx(ctx, func(q *dbgen.Queries) error {
		calls++
		if _, err := q.DepartmentCreate(ctx, dbgen.DepartmentCreateParams{Code: "LOST", Name: "Lost", Kind: "clinical"}); err != nil {
			return err
		}
		if calls == 1 {
			proxy.CutAll()
		}
		_, err := q.DepartmentList(ctx)
		return err
	})
	if err != nil {
		t.Fatalf("InTx after a lost connection: %v", err)
	}
	if calls != 2 || retries.Load() != 1 {
		t.Fatalf("fn ran %d times with %d retries, want 2 and 1", calls, retries.Load())
	}
	if n := departments(t, d, "LOST"); n != 1 {
		t.Fatalf("%d rows, want exactly 1", n)
	}
}

// A connection lost while COMMIT is in flight leaves the outcome unknown:
// InTx must not run the transaction again (it may have committed) and
// answers unavailable, whether COMMIT reached the server or not. Clients
// resolve the doubt with their Idempotency-Key.
func TestInTxNeverRetriesALostCommit(t *testing.T) {
	for _, reached := range []bool{true, false} {
		t.Run(fmt.Sprintf("commit reached the server %v", reached), func(t *testing.T) {
			d := testenv.NewDatabase(t)
			var retries atomic.Int64
			db, proxy := openVia(t, d, &retries)
			ctx := context.Background()
			// pgx describes a statement the first time a connection sends
			// it ("commit" too); warm the connection so that the fault hits
			// the COMMIT itself.
			if err := db.InTx(ctx, func(q *dbgen.Queries) error { _, err := q.DepartmentList(ctx); return err }); err != nil {
				t.Fatal(err)
			}
			fired := proxy.CutOn([]byte("commit"), reached)
			calls := 0
			err := db.InTx(ctx, func(q *dbgen.Queries) error {
				calls++
				_, err := q.DepartmentCreate(ctx, dbgen.DepartmentCreateParams{Code: "AMBIG", Name: "Ambiguous", Kind: "clinical"})
				return err
			})
			select {
			case <-fired:
			default:
				t.Fatal("the fault never fired: no COMMIT went through the proxy")
			}
			if hospital.ErrorCode(err) != hospital.EUNAVAILABLE {
				t.Fatalf("lost commit: %v, want unavailable", err)
			}
			if calls != 1 || retries.Load() != 0 {
				t.Fatalf("fn ran %d times with %d retries, want 1 and 0", calls, retries.Load())
			}
			want := 0
			if reached {
				want = 1
			}
			// The server finishes (or rolls back) on its own time.
			deadline := time.Now().Add(5 * time.Second)
			for departments(t, d, "AMBIG") != want && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if n := departments(t, d, "AMBIG"); n != want {
				t.Fatalf("%d rows, want %d", n, want)
			}
		})
	}
}

// Beginning a transaction while the pooler is unreachable is retried (BEGIN
// changes nothing) and then reported as unavailable, quickly.
func TestInTxBeginFailureIsUnavailable(t *testing.T) {
	d := testenv.NewDatabase(t)
	var retries atomic.Int64
	db, proxy := openVia(t, d, &retries)
	proxy.Close()
	db.Pool.Reset()
	start := time.Now()
	err := db.InTx(context.Background(), func(q *dbgen.Queries) error {
		t.Fatal("fn ran without a connection")
		return nil
	})
	if hospital.ErrorCode(err) != hospital.EUNAVAILABLE {
		t.Fatalf("begin without a server: %v, want unavailable", err)
	}
	if retries.Load() != 3 {
		t.Fatalf("%d retries, want 3 (the bounded attempts)", retries.Load())
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("giving up took %v", took)
	}
}

// The audit row and the idempotency record travel with COMMIT (atCommit)
// but stay part of the transaction: when the queued audit row is refused,
// the work before it does not commit and the refusal is returned; when it
// is accepted, both commit.
func TestStatementsSentWithCommit(t *testing.T) {
	d := testenv.NewDatabase(t)
	var retries atomic.Int64
	db, _ := openVia(t, d, &retries)
	ctx := context.Background()
	write := func(code, action string) error {
		return db.InTx(ctx, func(q *dbgen.Queries) error {
			if _, err := q.DepartmentCreate(ctx, dbgen.DepartmentCreateParams{Code: code, Name: code, Kind: "clinical"}); err != nil {
				return err
			}
			if err := q.AuditInsert(ctx, dbgen.AuditInsertParams{Action: action, ResourceType: "department", ResourceID: code,
				Outcome: "success", Details: []byte("{}")}); err != nil {
				t.Fatalf("the audit row was sent at once: %v", err)
			}
			_, err := q.DepartmentList(ctx) // a statement after the queued one
			return err
		})
	}
	if err := write("REFUSED", "Not An Action"); hospital.ErrorCode(err) != hospital.EINVALID {
		t.Fatalf("refused audit row: %v, want invalid", err)
	}
	if n := departments(t, d, "REFUSED"); n != 0 {
		t.Fatalf("the work of a transaction whose audit row was refused committed (%d rows)", n)
	}
	if err := write("KEPT", "department.create"); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, d.DirectURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var rows int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM audit_events WHERE resource_id = 'KEPT'").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if departments(t, d, "KEPT") != 1 || rows != 1 {
		t.Fatalf("department and audit row: %d and %d, want 1 and 1", departments(t, d, "KEPT"), rows)
	}
	if retries.Load() != 0 {
		t.Fatalf("%d retries", retries.Load())
	}
}

// The database's own settings (no JIT, migration 00008) are lost by a copy
// of the database; migrate sets them again even when no migration is
// pending.
func TestMigrateSetsDatabaseSettings(t *testing.T) {
	d := testenv.NewDatabase(t)
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, d.DirectURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	// What a copy made with CREATE DATABASE ... TEMPLATE looks like.
	if _, err := admin.Exec(ctx, "ALTER DATABASE "+d.Name+" RESET jit"); err != nil {
		t.Fatal(err)
	}
	jit := func() string {
		conn, err := pgx.Connect(ctx, d.DirectURL)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var v string
		if err := conn.QueryRow(ctx, "SHOW jit").Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := jit(); v != "on" {
		t.Fatalf("jit is %q in a copied database before migrate; the test expects the server's default (on)", v)
	}
	if err := postgres.Migrate(ctx, d.DirectURL, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if v := jit(); v != "off" {
		t.Fatalf("jit is %q after migrate, want off", v)
	}
}

// With every connection of the pool taken, a statement or a transaction
// waits AcquireTimeout for one, then is refused with 503 and Retry-After
// (not retried, not queued until the request's deadline). Statements
// outside a transaction give their connection back once read, or the
// one-connection pool below would refuse everything after the first.
func TestPoolWaitIsBounded(t *testing.T) {
	_, d := testenv.OpenDB(t)
	var retries atomic.Int64
	db, err := postgres.Open(context.Background(), d.URL, postgres.Options{MaxConns: 1, StatementTimeout: 5 * time.Second,
		ConnectTimeout: 5 * time.Second, AcquireTimeout: 200 * time.Millisecond, OnRetry: func() { retries.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if !t.Failed() { // Close waits for a leaked connection forever
			db.Close()
		}
	}()
	ctx := context.Background()
	for range 5 { // rows, row and exec, each releasing its connection
		if _, err := db.Queries().DepartmentList(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Queries().SleepForTest(ctx, 0); err != nil {
			t.Fatal(err)
		}
		if err := db.InTx(ctx, func(q *dbgen.Queries) error { _, err := q.DepartmentList(ctx); return err }); err != nil {
			t.Fatal(err)
		}
	}
	held, err := db.Pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	busy := func(what string, err error, took time.Duration) {
		t.Helper()
		var he *hospital.Error
		if !errors.As(postgres.Translate(err), &he) || he.Code != hospital.EUNAVAILABLE || he.RetryAfter <= 0 {
			t.Fatalf("%s with the pool taken: %v, want unavailable with a Retry-After", what, err)
		}
		if took < 200*time.Millisecond || took > 2*time.Second {
			t.Errorf("%s was refused after %v, want after the 200ms wait", what, took)
		}
	}
	start := time.Now()
	_, err = db.Queries().DepartmentList(ctx)
	busy("a statement", err, time.Since(start))
	start = time.Now()
	err = db.InTx(ctx, func(q *dbgen.Queries) error { _, err := q.DepartmentList(ctx); return err })
	busy("a transaction", err, time.Since(start))
	if retries.Load() != 0 {
		t.Errorf("a refused transaction was retried %d times", retries.Load())
	}
	// A request whose own deadline comes first is not "busy".
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err = db.Queries().DepartmentList(short)
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, postgres.ErrBusy) {
		t.Errorf("past the caller's deadline: %v, want its deadline", err)
	}
	held.Release()
	if _, err := db.Queries().DepartmentList(ctx); err != nil {
		t.Fatalf("with the connection back: %v", err)
	}
}
