package audit

import (
	"context"
	"errors"
	"time"

	"github.com/hospital-erp/hospital-erp/internal/hospital"
	"github.com/hospital-erp/hospital-erp/internal/postgres"
	"github.com/hospital-erp/hospital-erp/internal/postgres/dbgen"
)

// Recorder writes the audit row of a read that has no transaction of its
// own, and returns once the row is committed.
type Recorder interface {
	Record(ctx context.Context, e Entry) error
}

// Batcher group-commits the audit rows of reads: every request waiting at
// the same moment shares one statement (a COPY, or an INSERT for a row
// alone) and one commit, instead of a transaction each. A read is answered
// only after its row is committed (Record returns the commit's error), so
// nothing is shown that is not audited. Changes keep writing their rows in
// their own transaction (Write).
type Batcher struct {
	db       *postgres.DB
	queue    chan *pendingRow
	maxBatch int
	linger   time.Duration
	observe  func(rows int, d time.Duration)
}

type pendingRow struct {
	row  dbgen.AuditCopyParams
	done chan error
}

// BatcherOptions configure a Batcher.
type BatcherOptions struct {
	MaxBatch int                             // rows per COPY (default 500)
	Observe  func(rows int, d time.Duration) // after each batch; may be nil
	// Linger is how long a batch waits for more rows after its first
	// (default 1 ms; negative: not at all). Each COPY and commit costs
	// PostgreSQL about 0.3 ms of CPU whatever its size: without waiting,
	// 3,000 reads/s made batches of 2 or 3 rows, and the commits, not the
	// rows, were most of the database's work.
	Linger time.Duration
}

// NewBatcher returns a Batcher; start it with Run.
func NewBatcher(db *postgres.DB, o BatcherOptions) *Batcher {
	if o.MaxBatch <= 0 {
		o.MaxBatch = 500
	}
	if o.Linger == 0 {
		o.Linger = time.Millisecond
	}
	return &Batcher{db: db, queue: make(chan *pendingRow, 4*o.MaxBatch), maxBatch: o.MaxBatch, linger: max(o.Linger, 0),
		observe: o.Observe}
}

// errStopped answers the reads still waiting when the Batcher stops.
var errStopped = errors.New("audit batcher stopped")

// Run writes batches with workers concurrent writers (while one commits,
// the next batch gathers) until ctx ends.
func (b *Batcher) Run(ctx context.Context, workers int) {
	done := make(chan struct{})
	for range max(workers, 1) {
		go func() {
			defer func() { done <- struct{}{} }()
			b.work(ctx)
		}()
	}
	for range max(workers, 1) {
		<-done
	}
	for {
		select {
		case p := <-b.queue:
			p.done <- errStopped
		default:
			return
		}
	}
}

func (b *Batcher) work(ctx context.Context) {
	batch := make([]*pendingRow, 0, b.maxBatch)
	rows := make([]dbgen.AuditCopyParams, 0, b.maxBatch)
	for {
		batch, rows = batch[:0], rows[:0]
		select {
		case p := <-b.queue:
			batch = append(batch, p)
		case <-ctx.Done():
			return
		}
		linger := time.NewTimer(b.linger)
	gather:
		for len(batch) < b.maxBatch {
			select {
			case p := <-b.queue:
				batch = append(batch, p)
			case <-linger.C:
				break gather
			}
		}
		linger.Stop()
		for _, p := range batch {
			rows = append(rows, p.row)
		}
		start := time.Now()
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		err := writeRows(wctx, b.db.Queries(), rows)
		cancel()
		if err != nil {
			err = hospital.Wrap(hospital.EUNAVAILABLE, postgres.Translate(err), "The audit trail cannot be written just now; try again.")
		}
		if b.observe != nil {
			b.observe(len(rows), time.Since(start))
		}
		for _, p := range batch {
			p.done <- err
		}
	}
}

// writeRows writes one batch in one statement: a row alone by INSERT,
// more by COPY. pgx's COPY costs the backend a pipe, two goroutines and
// three writes per batch; for one row, a plain INSERT cost the backend 11%
// less CPU per read and per search (500 reads/s and 150 searches/s, where
// most batches hold one row) and PostgreSQL no more.
func writeRows(ctx context.Context, q *dbgen.Queries, rows []dbgen.AuditCopyParams) error {
	if len(rows) == 1 {
		return q.AuditInsert(ctx, dbgen.AuditInsertParams(rows[0]))
	}
	_, err := q.AuditCopy(ctx, rows)
	return err
}

// Record queues e and waits until it is committed (with the rows of other
// reads waiting at the same time). The actor, request id and client come
// from ctx.
func (b *Batcher) Record(ctx context.Context, e Entry) error {
	p, err := params(ctx, e)
	if err != nil {
		return err
	}
	pr := &pendingRow{row: dbgen.AuditCopyParams(p), done: make(chan error, 1)}
	select {
	case b.queue <- pr:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-pr.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
