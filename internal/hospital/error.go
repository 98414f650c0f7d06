// Package hospital holds the vocabulary every module shares: the error type
// and its codes, the acting user, and the clock. It imports nothing of ours.
package hospital

import (
	"errors"
	"fmt"
	"time"
)

// Error codes. Each maps to one HTTP status in httpapi/errors.go.
const (
	ECONFLICT     = "conflict"
	EINTERNAL     = "internal"
	EINVALID      = "invalid"
	ENOTFOUND     = "not_found"
	EUNAUTHORIZED = "unauthorized"
	EFORBIDDEN    = "forbidden"
	EUNAVAILABLE  = "unavailable"
	EPRECONDITION = "precondition_failed"
	// EPRECONDREQUIRED: a conditional request (If-Match) was required.
	EPRECONDREQUIRED = "precondition_required"
	ETOOMANY         = "too_many_requests"
	ETOOLARGE        = "too_large"
	// EUNPROCESSABLE: well-formed but cannot be processed (an idempotency
	// key reused for a different request).
	EUNPROCESSABLE = "unprocessable"
	// EMFAREQUIRED: the password was right, the one-time code is missing or wrong.
	EMFAREQUIRED = "mfa_required"
	EUNSUPPORTED = "unsupported_media_type"
)

// Error is the one application error type. Message is safe to show to the
// client; Err carries the internal cause and is never sent over the wire.
type Error struct {
	Code    string
	Message string
	// Fields holds per-field validation messages (field name -> message).
	Fields map[string]string
	// RetryAfter, when set, tells the client how long to wait (429, 503).
	RetryAfter time.Duration
	// Extensions are extra members of the problem document (for example
	// the likely duplicates of a refused registration).
	Extensions map[string]any
	Err        error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a client-safe message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error with the given code and message that wraps cause.
func Wrap(code string, cause error, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: cause}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL for
// any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the client-safe message of err.
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	}
	return "Internal error."
}

// Validation collects per-field problems and turns them into one EINVALID error.
type Validation struct {
	fields map[string]string
}

// Add records a problem with field unless one is already recorded.
func (v *Validation) Add(field, message string) {
	if v.fields == nil {
		v.fields = map[string]string{}
	}
	if _, ok := v.fields[field]; !ok {
		v.fields[field] = message
	}
}

// Check adds message for field when ok is false.
func (v *Validation) Check(ok bool, field, message string) {
	if !ok {
		v.Add(field, message)
	}
}

// Err returns nil when nothing was added, else an EINVALID *Error.
func (v *Validation) Err() error {
	if len(v.fields) == 0 {
		return nil
	}
	return &Error{Code: EINVALID, Message: "Some fields are not valid.", Fields: v.fields}
}
