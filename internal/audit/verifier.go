package audit

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"time"

	"github.com/hospital-erp/hospital-erp/internal/postgres"
	"github.com/hospital-erp/hospital-erp/internal/postgres/dbgen"
)

// VerifierOptions configure RunVerifier.
type VerifierOptions struct {
	Interval time.Duration // between verifications; the first runs at once
	// Blocks is the window: the most recent blocks whose links every run
	// checks and whose rows the runs re-hash in turn.
	Blocks int64
	// RecheckRows bounds the rows of already verified blocks a run reads
	// again; the rows of blocks sealed since the last run are read in any
	// case. On a replica's first run it bounds the newest blocks read.
	RecheckRows int64
	// Verified is called after each run with "ok", "broken" or "error" (the
	// chain could not be read) and the audit rows the run re-hashed: for
	// metrics.
	Verified func(result string, rows int64)
}

// RunVerifier checks the recent audit chain every interval until ctx
// ends, so tampering with recent records raises an alert within minutes
// rather than at the next full verification (`audit verify`, the daily
// CronJob). Every backend replica runs one; it only reads.
//
// A run checks the links of the last Blocks blocks (their headers only),
// re-hashes the rows of every block sealed since its last run, and then
// re-hashes up to RecheckRows rows of older blocks in the window, taking
// up where the previous run stopped; so its work follows the audit rate
// instead of the window's size (at a million audit rows an hour, re-hashing
// the whole window every run read a million rows each time), and an
// altered row in the window is found within the runs it takes to go round.
// A broken chain stays reported (later runs verify everything from the
// broken block) until the records are restored. It also remembers the head
// it last saw intact: that block disappearing or changing is a break too,
// even when it leaves no gap.
func RunVerifier(ctx context.Context, db *postgres.DB, log *slog.Logger, o VerifierOptions) {
	if o.Interval <= 0 {
		o.Interval = 5 * time.Minute
	}
	if o.Blocks <= 0 {
		o.Blocks = 1000
	}
	if o.RecheckRows <= 0 {
		o.RecheckRows = 100_000
	}
	if o.Verified == nil {
		o.Verified = func(string, int64) {}
	}
	v := &verifier{db: db, pace: restFactor, blocks: o.Blocks, recheck: o.RecheckRows}
	t := time.NewTicker(o.Interval)
	defer t.Stop()
	for {
		rep, err := v.run(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			log.Warn("audit chain verification could not run; will retry", "error", err)
			o.Verified("error", rep.Rows)
		case !rep.OK:
			log.Error("audit chain broken", "problem", rep.Problem, "block", rep.ProblemBlock, "event_id", rep.ProblemEventID)
			o.Verified("broken", rep.Rows)
		default:
			log.Debug("audit chain verified", "blocks", rep.Blocks, "rows", rep.Rows, "head", rep.Head)
			o.Verified("ok", rep.Rows)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// restFactor paces the verifier: after each block it rests that many
// times as long as the block took, so it takes at most a tenth of the
// replica's CPU (a backend pod has one core; unpaced, a run re-hashing
// 100,000 rows took the core for a second and the requests waited behind
// it) and of the database's, at the cost of a run lasting ten times longer.
const restFactor = 9

type verifier struct {
	db       *postgres.DB
	pace     int // restFactor; 0 in tests of the chain logic
	blocks   int64
	recheck  int64
	brokenAt int64 // first block of the last broken report, 0 when intact

	headSeq  int64 // the head at the last intact verification; its rows and all newer were re-hashed
	headHash []byte
	cursor   int64 // the next block of the window to re-hash again
}

// rest waits pace times took, or until ctx ends.
func (v *verifier) rest(ctx context.Context, took time.Duration) error {
	if v.pace == 0 {
		return nil
	}
	t := time.NewTimer(took * time.Duration(v.pace))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// run is one verification. Report.Blocks counts the blocks whose links it
// checked, Report.Rows the rows it re-hashed.
func (v *verifier) run(ctx context.Context) (Report, error) {
	q := v.db.Queries()
	arch, err := loadArchives(ctx, q)
	if err != nil {
		return Report{}, err
	}
	if v.brokenAt > 0 {
		// Everything from the broken block, as the full verification does,
		// until the records are restored.
		rep, err := verifyRange(ctx, q, v.brokenAt, 0, arch)
		if err == nil && rep.OK {
			rep, err = v.checkHead(ctx, q, rep, v.headSeq+1, nil)
		}
		if err != nil || !rep.OK {
			if err == nil {
				v.brokenAt = rep.ProblemBlock
			}
			return rep, err
		}
		if rep.Blocks > 0 {
			v.headSeq = v.brokenAt + rep.Blocks - 1
			v.headHash, _ = hex.DecodeString(rep.Head)
		}
		v.brokenAt, v.cursor = 0, 0
		return rep, nil
	}
	last, err := q.AuditBlockLastSeq(ctx)
	if err != nil {
		return Report{}, postgres.Translate(err)
	}
	from := max(1, last-v.blocks+1)
	rep, heads, err := checkLinks(ctx, q, from, last)
	if err == nil && rep.OK {
		rep, err = v.checkHead(ctx, q, rep, from, heads)
	}
	if err == nil && rep.OK {
		rep, err = v.checkRows(ctx, q, rep, from, heads, arch)
	}
	if err != nil {
		return rep, err
	}
	if !rep.OK {
		v.brokenAt = rep.ProblemBlock
		return rep, nil
	}
	if len(heads) > 0 {
		h := heads[len(heads)-1]
		v.headSeq, v.headHash = h.Seq, h.Hash
		rep.Head = hex.EncodeToString(h.Hash)
	}
	if u, err := Unsealed(ctx, q); err == nil {
		rep.Unsealed = u.Unsealed
	}
	return rep, nil
}

// checkLinks reads the headers of blocks from..last and checks that they
// follow one another and link, the first to block from-1.
func checkLinks(ctx context.Context, q *dbgen.Queries, from, last int64) (Report, []dbgen.AuditBlockHeadersRow, error) {
	rep := Report{OK: true}
	prev := make([]byte, 32)
	after := from - 1
	if from > 1 {
		after = from - 2 // the anchor: the block before the window
	}
	var heads []dbgen.AuditBlockHeadersRow
	for after < last {
		page, err := q.AuditBlockHeaders(ctx, dbgen.AuditBlockHeadersParams{AfterSeq: after, Lim: int32(min(1000, last-after))})
		if err != nil {
			return rep, nil, postgres.Translate(err)
		}
		if len(page) == 0 {
			break
		}
		heads = append(heads, page...)
		after = page[len(page)-1].Seq
	}
	next := from
	if from > 1 {
		if len(heads) == 0 || heads[0].Seq != from-1 {
			return rep.fail(from-1, 0, fmt.Sprintf("block %d is missing", from-1)), nil, nil
		}
		prev, heads = heads[0].Hash, heads[1:]
	}
	for _, h := range heads {
		if h.Seq != next {
			return rep.fail(h.Seq, 0, fmt.Sprintf("block %d is missing (found %d next)", next, h.Seq)), nil, nil
		}
		if !bytes.Equal(h.PrevHash, prev) {
			return rep.fail(h.Seq, 0, fmt.Sprintf("block %d does not link to block %d (altered or replaced block)", h.Seq, h.Seq-1)), nil, nil
		}
		prev = h.Hash
		next++
		rep.Blocks++
	}
	if next <= last {
		return rep.fail(next, 0, fmt.Sprintf("block %d is missing", next)), nil, nil
	}
	return rep, heads, nil
}

// checkHead reports the head this verifier last saw intact gone or changed.
func (v *verifier) checkHead(ctx context.Context, q *dbgen.Queries, rep Report, from int64, heads []dbgen.AuditBlockHeadersRow) (Report, error) {
	if v.headSeq == 0 {
		return rep, nil
	}
	var hash []byte
	switch {
	case v.headSeq >= from && v.headSeq-from < int64(len(heads)):
		hash = heads[v.headSeq-from].Hash
	case v.headSeq < from:
		b, err := q.AuditBlocks(ctx, dbgen.AuditBlocksParams{AfterSeq: v.headSeq - 1, Lim: 1})
		if err != nil {
			return rep, postgres.Translate(err)
		}
		if len(b) == 1 && b[0].Seq == v.headSeq {
			hash = b[0].Hash
		}
	}
	if !bytes.Equal(hash, v.headHash) {
		return rep.fail(v.headSeq, 0, fmt.Sprintf("block %d, verified before, is gone or changed (chain cut or replaced)", v.headSeq)), nil
	}
	return rep, nil
}

// checkRows re-hashes the rows of the blocks in heads (the window, which
// starts at block from) that are newer than the last run's head, then up
// to v.recheck rows of the older ones from v.cursor on. A first run reads
// only the newest blocks, up to v.recheck rows. The rows of blocks arch
// holds are offline and skipped.
func (v *verifier) checkRows(ctx context.Context, q *dbgen.Queries, rep Report, from int64, heads []dbgen.AuditBlockHeadersRow, arch archives) (Report, error) {
	if len(heads) == 0 {
		return rep, nil
	}
	last := from + int64(len(heads)) - 1
	firstRun := v.headSeq == 0
	newFrom := v.headSeq + 1
	if firstRun {
		newFrom = last + 1
		for rows := int64(0); newFrom > from && rows < v.recheck; {
			newFrom--
			rows += int64(heads[newFrom-from].RowCount)
		}
	}
	newFrom = max(newFrom, from)
	check := func(a, b int64) (bool, error) { // blocks a..b; false: a problem, in rep
		for after := a - 1; after < b; {
			blocks, err := q.AuditBlocks(ctx, dbgen.AuditBlocksParams{AfterSeq: after, Lim: int32(min(100, b-after))})
			if err != nil {
				return false, postgres.Translate(err)
			}
			if len(blocks) == 0 {
				rep = rep.fail(after+1, 0, fmt.Sprintf("block %d is missing", after+1))
				return false, nil
			}
			for _, blk := range blocks {
				if blk.Seq > b {
					break
				}
				// The header whose links were checked is the block re-hashed.
				if hd := heads[blk.Seq-from]; hd.Seq != blk.Seq || !bytes.Equal(hd.Hash, blk.Hash) || !bytes.Equal(hd.PrevHash, blk.PrevHash) {
					rep = rep.fail(blk.Seq, 0, fmt.Sprintf("block %d changed during verification", blk.Seq))
					return false, nil
				}
				after = blk.Seq
				if arch.holds(blk.Seq) { // its rows are offline (Archive)
					rep.ArchivedBlocks++
					continue
				}
				start := time.Now()
				n, bad, err := checkBlock(ctx, q, blk)
				rep.Rows += n
				if err != nil {
					return false, err
				}
				if err := v.rest(ctx, time.Since(start)); err != nil {
					return false, err
				}
				if bad != nil {
					rep = rep.fail(blk.Seq, bad.id, bad.msg)
					return false, nil
				}
			}
		}
		return true, nil
	}
	if newFrom <= last {
		if ok, err := check(newFrom, last); !ok || err != nil {
			return rep, err
		}
	}
	if firstRun { // its budget went to the newest blocks
		return rep, nil
	}
	// Older blocks, in turn: from the cursor towards newFrom, then round
	// from the window's start, each at most once per run, as many as the
	// rows budget covers (whole blocks: at least one).
	older := newFrom - from
	if v.cursor < from || v.cursor >= newFrom {
		v.cursor = from
	}
	n, rows := int64(0), int64(0)
	for n < older && rows < v.recheck {
		rows += int64(heads[(v.cursor-from+n)%older].RowCount)
		n++
	}
	first := min(n, newFrom-v.cursor)
	if first > 0 {
		if ok, err := check(v.cursor, v.cursor+first-1); !ok || err != nil {
			return rep, err
		}
	}
	if n > first {
		if ok, err := check(from, from+n-first-1); !ok || err != nil {
			return rep, err
		}
	}
	v.cursor = from + (v.cursor-from+n)%max(older, 1)
	return rep, nil
}
