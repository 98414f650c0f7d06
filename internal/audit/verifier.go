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
	Blocks   int64         // the most recent blocks each run checks
	// Verified is called after each run with "ok", "broken" or "error" (the
	// chain could not be read): for metrics.
	Verified func(result string)
}

// RunVerifier verifies the most recent blocks of the audit chain every
// interval until ctx ends, so tampering with recent records raises an alert
// within minutes rather than at the next full verification. Every backend
// replica runs one; it only reads. A broken chain stays reported (later runs
// start at the broken block) until the records are restored. It also
// remembers the head it last saw intact: that block disappearing or changing
// is a break too, even when it leaves no gap.
func RunVerifier(ctx context.Context, db *postgres.DB, log *slog.Logger, o VerifierOptions) {
	if o.Interval <= 0 {
		o.Interval = 5 * time.Minute
	}
	if o.Blocks <= 0 {
		o.Blocks = 1000
	}
	if o.Verified == nil {
		o.Verified = func(string) {}
	}
	v := &verifier{db: db, blocks: o.Blocks}
	t := time.NewTicker(o.Interval)
	defer t.Stop()
	for {
		rep, err := v.run(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			log.Warn("audit chain verification could not run; will retry", "error", err)
			o.Verified("error")
		case !rep.OK:
			log.Error("audit chain broken", "problem", rep.Problem, "block", rep.ProblemBlock, "event_id", rep.ProblemEventID)
			o.Verified("broken")
		default:
			log.Debug("audit chain verified", "blocks", rep.Blocks, "head", rep.Head)
			o.Verified("ok")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

type verifier struct {
	db       *postgres.DB
	blocks   int64
	brokenAt int64 // first block of the last broken report, 0 when intact

	headSeq  int64 // the head at the last intact verification
	headHash []byte
}

func (v *verifier) run(ctx context.Context) (Report, error) {
	q := v.db.Queries()
	last, err := q.AuditBlockLastSeq(ctx)
	if err != nil {
		return Report{}, postgres.Translate(err)
	}
	from := max(1, last-v.blocks+1)
	if v.brokenAt > 0 && v.brokenAt < from {
		from = max(1, v.brokenAt)
	}
	rep, err := verifyFrom(ctx, v.db, from)
	if err != nil {
		return rep, err
	}
	if rep.OK && v.headSeq > 0 {
		b, err := q.AuditBlocks(ctx, dbgen.AuditBlocksParams{AfterSeq: v.headSeq - 1, Lim: 1})
		if err != nil {
			return rep, postgres.Translate(err)
		}
		if len(b) == 0 || b[0].Seq != v.headSeq || !bytes.Equal(b[0].Hash, v.headHash) {
			rep = rep.fail(v.headSeq, 0, fmt.Sprintf("block %d, verified before, is gone or changed (chain cut or replaced)", v.headSeq))
		}
	}
	if !rep.OK {
		v.brokenAt = rep.ProblemBlock
		return rep, nil
	}
	v.brokenAt = 0
	if rep.Head != "" {
		v.headSeq = from + rep.Blocks - 1
		v.headHash, _ = hex.DecodeString(rep.Head)
	}
	return rep, nil
}
