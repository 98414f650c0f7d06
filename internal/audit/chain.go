package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/hospital-erp/hospital-erp/internal/postgres"
	"github.com/hospital-erp/hospital-erp/internal/postgres/dbgen"
)

// SealerOptions configure RunSealer.
type SealerOptions struct {
	Interval time.Duration // how often to seal; the unsealed window is about this long
	MaxRows  int           // rows per block
	// Sealed is called with the rows sealed and the rows still unsealed (metrics).
	Sealed func(sealed int, unsealed int64)
}

// RunSealer seals committed audit rows into hash-chained blocks every
// interval until ctx ends. Every backend replica runs one; a
// transaction-scoped advisory lock lets only one seal at a time, and
// requests never wait for it. Each sealed block's hash is logged, so the
// log store keeps an independent copy of the chain's head.
func RunSealer(ctx context.Context, db *postgres.DB, log *slog.Logger, o SealerOptions) {
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.MaxRows <= 0 {
		o.MaxRows = 5000
	}
	if o.Sealed == nil {
		o.Sealed = func(int, int64) {}
	}
	t := time.NewTicker(o.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		total, err := SealPending(ctx, db, o.MaxRows)
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("audit sealing failed; will retry", "error", err)
			}
			continue
		}
		var unsealed int64
		if row, err := Unsealed(ctx, db.Queries()); err == nil {
			unsealed = row.Unsealed
		}
		o.Sealed(total, unsealed)
		if total > 0 {
			log.Info("audit rows sealed", "rows", total, "head", headHash(ctx, db))
		}
	}
}

// Unsealed counts the rows after the sealed chain's end (two statements:
// see AuditUnsealedCount).
func Unsealed(ctx context.Context, q *dbgen.Queries) (dbgen.AuditUnsealedCountRow, error) {
	end, err := q.AuditLastBlockEnd(ctx)
	if err != nil {
		return dbgen.AuditUnsealedCountRow{}, err
	}
	return q.AuditUnsealedCount(ctx, dbgen.AuditUnsealedCountParams{AfterXactID: end.XactID, AfterID: end.ID})
}

// SealPending seals until nothing sealable is left and returns the rows sealed.
func SealPending(ctx context.Context, db *postgres.DB, maxRows int) (int, error) {
	total := 0
	for {
		var n int32
		err := db.InTx(ctx, func(q *dbgen.Queries) error {
			var err error
			n, err = q.AuditSeal(ctx, int32(maxRows))
			return err
		})
		if err != nil {
			return total, err
		}
		total += int(n)
		if int(n) < maxRows {
			return total, nil
		}
	}
}

func headHash(ctx context.Context, db *postgres.DB) string {
	h, err := db.Queries().AuditHead(ctx)
	if err != nil {
		return ""
	}
	return hex.EncodeToString(h)
}

// Report is the result of walking the chain.
type Report struct {
	OK       bool   `json:"ok"`
	Blocks   int64  `json:"blocks"`
	Rows     int64  `json:"rows"` // rows re-hashed
	Unsealed int64  `json:"unsealed_rows"`
	Head     string `json:"head,omitempty"`
	// Problem describes the first inconsistency: an altered row, a
	// missing row, or a broken link between blocks.
	Problem string `json:"problem,omitempty"`
	// ProblemEventID is the audit row concerned, when one is.
	ProblemEventID int64 `json:"problem_event_id,omitempty"`
	ProblemBlock   int64 `json:"problem_block,omitempty"`
	// Archived lists the partitions detached for archiving (`audit
	// archive`): their blocks' links were checked, not their rows, which
	// are offline. ArchivedBlocks counts those blocks among Blocks.
	Archived       []Archived `json:"archived,omitempty"`
	ArchivedBlocks int64      `json:"archived_blocks,omitempty"`
}

// Archived is one archived partition of the audit trail.
type Archived struct {
	Partition  string    `json:"partition"`
	FirstBlock int64     `json:"first_block,omitempty"`
	LastBlock  int64     `json:"last_block,omitempty"`
	Rows       int64     `json:"rows"`
	ArchivedAt time.Time `json:"archived_at"`
}

// archives are the block ranges whose rows are archived.
type archives []Archived

func loadArchives(ctx context.Context, q *dbgen.Queries) (archives, error) {
	rows, err := q.AuditArchives(ctx)
	if err != nil {
		return nil, postgres.Translate(err)
	}
	out := make(archives, 0, len(rows))
	for _, r := range rows {
		a := Archived{Partition: r.Partition, Rows: r.RowCount, ArchivedAt: r.ArchivedAt}
		if r.FirstBlock != nil && r.LastBlock != nil {
			a.FirstBlock, a.LastBlock = *r.FirstBlock, *r.LastBlock
		}
		out = append(out, a)
	}
	return out, nil
}

// holds says whether block seq holds archived rows.
func (as archives) holds(seq int64) bool {
	for _, a := range as {
		if a.FirstBlock > 0 && a.FirstBlock <= seq && seq <= a.LastBlock {
			return true
		}
	}
	return false
}

// Verify walks every sealed block in order: each link to the previous
// block, each row's content against its hash, each block's list of rows
// against the rows present, and each block's hash. It stops at the first
// problem.
//
// The blocks of archived partitions (Archive) are checked for their links
// only, and listed in the report.
func Verify(ctx context.Context, db *postgres.DB) (Report, error) {
	q := db.Queries()
	arch, err := loadArchives(ctx, q)
	if err != nil {
		return Report{}, err
	}
	rep, err := verifyRange(ctx, q, 1, 0, arch)
	rep.Archived = arch
	return rep, err
}

// verifyRange verifies blocks from..to (to 0: to the last), skipping the
// rows of blocks arch holds.
func verifyRange(ctx context.Context, q *dbgen.Queries, from, to int64, arch archives) (Report, error) {
	rep := Report{OK: true}
	prev := make([]byte, 32)
	if from > 1 {
		anchor, err := q.AuditBlocks(ctx, dbgen.AuditBlocksParams{AfterSeq: from - 2, Lim: 1})
		if err != nil {
			return rep, postgres.Translate(err)
		}
		if len(anchor) == 0 || anchor[0].Seq != from-1 {
			return rep.fail(from-1, 0, fmt.Sprintf("block %d is missing", from-1)), nil
		}
		prev = anchor[0].Hash
	}
	after, next := from-1, from
	for {
		blocks, err := q.AuditBlocks(ctx, dbgen.AuditBlocksParams{AfterSeq: after, Lim: 100})
		if err != nil {
			return rep, postgres.Translate(err)
		}
		if len(blocks) == 0 || (to > 0 && after >= to) {
			break
		}
		for _, b := range blocks {
			if to > 0 && b.Seq > to {
				break
			}
			after = b.Seq
			if b.Seq != next {
				return rep.fail(b.Seq, 0, fmt.Sprintf("block %d is missing (found %d next)", next, b.Seq)), nil
			}
			if !bytes.Equal(b.PrevHash, prev) {
				return rep.fail(b.Seq, 0, fmt.Sprintf("block %d does not link to block %d (altered or replaced block)", b.Seq, b.Seq-1)), nil
			}
			if arch.holds(b.Seq) {
				rep.ArchivedBlocks++
			} else if _, bad, err := checkBlock(ctx, q, b); err != nil {
				return rep, err
			} else if bad != nil {
				return rep.fail(b.Seq, bad.id, bad.msg), nil
			} else {
				rep.Rows += int64(b.RowCount)
			}
			prev = b.Hash
			next++
			rep.Blocks++
		}
	}
	if rep.Blocks > 0 {
		rep.Head = hex.EncodeToString(prev)
	}
	if u, err := Unsealed(ctx, q); err == nil {
		rep.Unsealed = u.Unsealed
	}
	return rep, nil
}

// problem is what checkBlock found wrong with a block.
type problem struct {
	id  int64 // the audit row concerned, 0 for the block itself
	msg string
}

// checkBlock reads the rows block b lists and checks them against it: each
// row present and unaltered, no row inserted into its range afterwards,
// and b's hash that of its previous hash and the rows' hashes. The link to
// the previous block is the caller's to check. It returns the rows read.
func checkBlock(ctx context.Context, q *dbgen.Queries, b dbgen.AuditBlock) (int64, *problem, error) {
	rows, err := q.AuditBlockRows(ctx, dbgen.AuditBlockRowsParams{FromXid: b.FromXid, FromID: b.FromID, ToXid: b.ToXid, ToID: b.ToID})
	if err != nil {
		return 0, nil, postgres.Translate(err)
	}
	n := int64(len(rows))
	present := make(map[int64]dbgen.AuditBlockRowsRow, len(rows))
	for _, r := range rows {
		present[r.ID] = r
	}
	h := sha256.New()
	h.Write(b.PrevHash)
	for _, id := range b.EventIds {
		r, ok := present[id]
		if !ok {
			return n, &problem{id, fmt.Sprintf("audit row %d (block %d) is missing: deleted", id, b.Seq)}, nil
		}
		if !bytes.Equal(r.RowHash, rowHash(r)) {
			return n, &problem{id, fmt.Sprintf("audit row %d (block %d) was altered after it was written", id, b.Seq)}, nil
		}
		h.Write(r.RowHash)
		delete(present, id)
	}
	for id := range present {
		return n, &problem{id, fmt.Sprintf("audit row %d appeared inside sealed block %d: inserted afterwards", id, b.Seq)}, nil
	}
	if !bytes.Equal(h.Sum(nil), b.Hash) {
		return n, &problem{0, fmt.Sprintf("block %d's hash does not match its rows (row hashes rewritten)", b.Seq)}, nil
	}
	return n, nil, nil
}

// rowHash is an audit row's hash as the database's audit_row_hash computes
// it when the row is written (migrations 00013, 00016): SHA-256 of the
// columns' text forms joined by the unit separator (chr(31)), timestamps
// as epoch microseconds, a missing actor or patient as an empty string.
// Computed here, a replaced database function cannot vouch for an altered
// row. TestAuditVerifierHashesRowsItself keeps the two in step.
func rowHash(r dbgen.AuditBlockRowsRow) []byte {
	id := func(u *uuid.UUID) string {
		if u == nil {
			return ""
		}
		return u.String()
	}
	fields := []string{
		strconv.FormatInt(r.ID, 10),
		strconv.FormatInt(r.OccurredAt.UnixMicro(), 10),
		id(r.ActorID),
		r.ActorRole,
		r.Action,
		r.ResourceType,
		r.ResourceID,
		id(r.PatientID),
		r.Outcome,
		r.RequestID,
		r.ClientIp,
		r.UserAgent,
		r.Details,
		strconv.FormatUint(r.XactID.Uint64, 10),
	}
	sum := sha256.Sum256([]byte(strings.Join(fields, "\x1f")))
	return sum[:]
}

func (r Report) fail(block, id int64, msg string) Report {
	r.OK = false
	r.Problem = msg
	r.ProblemBlock = block
	r.ProblemEventID = id
	return r
}
