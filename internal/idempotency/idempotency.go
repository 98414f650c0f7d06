// Package idempotency makes commands safe to retry. A client sends
// "Idempotency-Key: <unique value>" with a creating or state-changing
// request; the first response is stored with the key in the same
// transaction as the work, so a retry after a dropped connection gets the
// first answer and never a second record, and a different request with the
// same key is refused.
package idempotency

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/hospital-erp/hospital-erp/internal/hospital"
	"github.com/hospital-erp/hospital-erp/internal/postgres"
	"github.com/hospital-erp/hospital-erp/internal/postgres/dbgen"
)

// Header is the request header carrying the key.
const Header = "Idempotency-Key"

// ReplayedHeader marks a response that repeats a stored one.
const ReplayedHeader = "Idempotent-Replayed"

// Request identifies one command: the client's key and a fingerprint of
// the method, path and body.
type Request struct {
	Key         string
	Fingerprint [32]byte
	// replayed is set by Run when it answers from the stored response; the
	// middleware then marks the HTTP response.
	replayed *atomic.Bool
}

type ctxKey struct{}

// From returns the request's idempotency key, if it sent one.
func From(ctx context.Context) (Request, bool) {
	r, ok := ctx.Value(ctxKey{}).(Request)
	return r, ok
}

// WithRequest returns ctx carrying r.
func WithRequest(ctx context.Context, r Request) context.Context {
	return context.WithValue(ctx, ctxKey{}, r)
}

// Middleware reads Idempotency-Key on POST, PUT, PATCH and DELETE,
// fingerprints the request and puts both into the context. The body
// (already limited in size) is read once and replayed to the handler.
func Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get(Header)
		if key == "" || r.Method == http.MethodGet || r.Method == http.MethodHead {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			// Let the handler's decoder report the problem (413, ...).
			r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), errReader{err}))
			next.ServeHTTP(w, r)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		h := sha256.New()
		h.Write([]byte(r.Method + " " + r.URL.Path + "\n"))
		h.Write(body)
		var fp [32]byte
		copy(fp[:], h.Sum(nil))
		req := Request{Key: key, Fingerprint: fp, replayed: new(atomic.Bool)}
		next.ServeHTTP(&markingWriter{ResponseWriter: w, replayed: req.replayed}, r.WithContext(WithRequest(r.Context(), req)))
	})
}

// markingWriter adds Idempotent-Replayed to a response that Run answered
// from the stored one, so every command marks replays the same way.
type markingWriter struct {
	http.ResponseWriter
	replayed *atomic.Bool
	wrote    bool
}

func (m *markingWriter) WriteHeader(code int) {
	if !m.wrote {
		m.wrote = true
		if m.replayed.Load() {
			m.Header().Set(ReplayedHeader, "true")
		}
	}
	m.ResponseWriter.WriteHeader(code)
}

func (m *markingWriter) Write(b []byte) (int, error) {
	if !m.wrote {
		m.WriteHeader(http.StatusOK)
	}
	return m.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (m *markingWriter) Unwrap() http.ResponseWriter { return m.ResponseWriter }

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// Run runs fn in a transaction. When the request carries an idempotency
// key, fn's result is recorded with the key in that same transaction (with
// its COMMIT: no round trip of its own); a repeat of the same request
// returns the recorded result with replayed true. A different request with
// a used key gets EUNPROCESSABLE; a key longer than 200 characters
// EINVALID. Errors are not recorded: the work rolls back with its key, so a
// failed request can be retried with the same key.
//
// fn runs before the key is looked at: a repeat usually fails in fn (the
// slot it booked is taken, the patient it admitted is in a bed) or, when
// its work does not collide, at the key's primary key, which waits for the
// request holding the key and refuses this one once that one commits.
// Either way its transaction rolls back, and only then is the key looked
// up: one statement fewer for every command than claiming the key first
// and storing the response after.
func Run[T any](ctx context.Context, db *postgres.DB, fn func(q *dbgen.Queries) (T, error)) (T, bool, error) {
	var zero T
	req, ok := From(ctx)
	actor := hospital.ActorFrom(ctx)
	if !ok || actor == nil {
		var out T
		err := db.InTx(ctx, func(q *dbgen.Queries) error {
			var err error
			out, err = fn(q)
			return err
		})
		return out, false, err
	}
	if len(req.Key) > 200 {
		return zero, false, hospital.Errorf(hospital.EINVALID, "The Idempotency-Key header is longer than 200 characters.")
	}
	uid, err := uuid.Parse(actor.UserID)
	if err != nil {
		return zero, false, err
	}
	var out T
	err = db.InTx(ctx, func(q *dbgen.Queries) error {
		var err error
		if out, err = fn(q); err != nil {
			return err
		}
		b, err := json.Marshal(out)
		if err != nil {
			return err
		}
		return q.IdempotencyRecord(ctx, dbgen.IdempotencyRecordParams{ActorID: uid, Key: req.Key, Fingerprint: req.Fingerprint[:], Response: b})
	})
	if err == nil {
		return out, false, nil
	}
	// Failed, or refused at the key: was this request answered before?
	stored, lerr := db.Queries().IdempotencyGet(ctx, dbgen.IdempotencyGetParams{ActorID: uid, Key: req.Key})
	switch {
	case lerr != nil: // not recorded (or the database is gone): fn's error stands
		return zero, false, err
	case !bytes.Equal(stored.Fingerprint, req.Fingerprint[:]):
		return zero, false, hospital.Errorf(hospital.EUNPROCESSABLE,
			"This Idempotency-Key was already used for a different request; use a new key for a new request.")
	case stored.Response == nil:
		return zero, false, hospital.Errorf(hospital.ECONFLICT, "A request with this Idempotency-Key is still being processed; retry shortly.")
	}
	var first T // not out: what the failed work left there must not show through
	if err := json.Unmarshal(stored.Response, &first); err != nil {
		return zero, false, err
	}
	if req.replayed != nil {
		req.replayed.Store(true)
	}
	return first, true, nil
}

// Do is Run for a closure that sets its result itself, as most commands
// are written: *out is what is stored with the key, and what a replay
// restores without running fn. Commands without a response body pass a
// *struct{}.
func Do[T any](ctx context.Context, db *postgres.DB, out *T, fn func(q *dbgen.Queries) error) (replayed bool, err error) {
	v, replayed, err := Run(ctx, db, func(q *dbgen.Queries) (T, error) {
		if err := fn(q); err != nil {
			var zero T
			return zero, err
		}
		return *out, nil
	})
	if err != nil {
		return false, err
	}
	*out = v
	return replayed, nil
}

// RunExpiry deletes keys older than ttl every interval until ctx ends.
func RunExpiry(ctx context.Context, db *postgres.DB, log *slog.Logger, ttl, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := db.Queries().IdempotencyExpire(ctx, time.Now().Add(-ttl))
		if err != nil && !errors.Is(err, context.Canceled) {
			log.Warn("expiring idempotency keys failed", "error", err)
		} else if n > 0 {
			log.Debug("idempotency keys expired", "count", n)
		}
	}
}
