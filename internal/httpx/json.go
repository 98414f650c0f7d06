// Package httpx holds the HTTP helpers every module's http.go uses: strict
// JSON decoding, encoding, problem+json, the router that records routes for
// the OpenAPI check, paging, and the middleware chain.
package httpx

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/hospital-erp/hospital-erp/internal/hospital"
)

// Decode reads one JSON object from the request body into v. It refuses
// other content types, unknown fields, trailing data and oversize bodies,
// each with a clear EINVALID/ETOOLARGE/EUNSUPPORTED error.
func Decode(r *http.Request, v any) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return hospital.Errorf(hospital.EUNSUPPORTED, "Send the request body as application/json.")
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return decodeError(err)
		}
		return hospital.Errorf(hospital.EINVALID, "The request body must hold exactly one JSON value.")
	}
	return nil
}

func decodeError(err error) error {
	var (
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
		mbe    *http.MaxBytesError
	)
	switch {
	case errors.As(err, &mbe):
		return hospital.Errorf(hospital.ETOOLARGE, "The request body is larger than %d bytes.", mbe.Limit)
	case errors.Is(err, io.EOF):
		return hospital.Errorf(hospital.EINVALID, "The request body is empty; send a JSON object.")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return hospital.Errorf(hospital.EINVALID, "The JSON in the request body ends too early.")
	case errors.As(err, &syntax):
		return hospital.Errorf(hospital.EINVALID, "Malformed JSON at byte %d.", syntax.Offset)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return hospital.Errorf(hospital.EINVALID, "The request body must be a JSON %s.", jsonKind(typ.Type.Kind().String()))
		}
		return &hospital.Error{Code: hospital.EINVALID, Message: "Some fields are not valid.",
			Fields: map[string]string{typ.Field: fmt.Sprintf("must be %s", jsonKind(typ.Type.Kind().String()))}}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &hospital.Error{Code: hospital.EINVALID, Message: "The request has a field this endpoint does not know.",
			Fields: map[string]string{field: "unknown field"}}
	}
	return hospital.Wrap(hospital.EINVALID, err, "The request body could not be read.")
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "struct", "map":
		return "an object"
	case "slice", "array":
		return "an array"
	case "ptr":
		return "a value of the right type"
	}
	return "a number"
}

// JSON writes v with status. API responses are never stored by caches:
// almost all of them carry patient data.
func JSON(w http.ResponseWriter, status int, v any) {
	jsonHeader(w, status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	_ = enc.Encode(v)
}

// EncodedJSON writes b, a value already encoded by json.Marshal (a cached
// record), exactly as JSON would have written that value.
func EncodedJSON(w http.ResponseWriter, status int, b []byte) {
	jsonHeader(w, status)
	_, _ = w.Write(b)
	_, _ = w.Write(newline)
}

var newline = []byte{'\n'}

func jsonHeader(w http.ResponseWriter, status int) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	if h.Get("Cache-Control") == "" {
		h.Set("Cache-Control", "no-store")
	}
	w.WriteHeader(status)
}

// Problem is an RFC 9457 problem details body.
type Problem struct {
	Type      string            `json:"type"`
	Title     string            `json:"title"`
	Status    int               `json:"status"`
	Detail    string            `json:"detail,omitempty"`
	Instance  string            `json:"instance,omitempty"`
	Code      string            `json:"code"`
	RequestID string            `json:"request_id,omitempty"`
	Errors    map[string]string `json:"errors,omitempty"`
	// Extensions are further members (RFC 9457 section 3.2), such as
	// "duplicates" on a refused registration.
	Extensions map[string]json.RawMessage `json:"-"`
}

type problemFields Problem

// MarshalJSON writes the problem with its extension members inline.
func (p Problem) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(problemFields(p))
	if err != nil || len(p.Extensions) == 0 {
		return b, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	for k, v := range p.Extensions {
		if _, taken := m[k]; !taken {
			m[k] = v
		}
	}
	return json.Marshal(m)
}

// UnmarshalJSON reads the standard members and keeps the others as
// extensions.
func (p *Problem) UnmarshalJSON(b []byte) error {
	if err := json.Unmarshal(b, (*problemFields)(p)); err != nil {
		return err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	for _, k := range []string{"type", "title", "status", "detail", "instance", "code", "request_id", "errors"} {
		delete(m, k)
	}
	if len(m) > 0 {
		p.Extensions = m
	}
	return nil
}

// WriteProblem writes p as application/problem+json.
func WriteProblem(w http.ResponseWriter, p Problem) {
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	h.Del("Content-Encoding")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// ETag formats a record version as an entity tag.
func ETag(version int) string { return `"` + strconv.Itoa(version) + `"` }

// IfMatch reads the version an update is based on from If-Match. It is
// required: without it a change could silently overwrite someone else's.
func IfMatch(r *http.Request) (int, error) {
	v := r.Header.Get("If-Match")
	if v == "" {
		return 0, hospital.Errorf(hospital.EPRECONDREQUIRED,
			"Send If-Match with the ETag of the version you are changing, so that no one's change is silently lost.")
	}
	n, err := strconv.Atoi(strings.Trim(strings.TrimPrefix(v, "W/"), `"`))
	if err != nil || n < 1 {
		return 0, hospital.Errorf(hospital.EINVALID, "If-Match must be an ETag this API returned, such as \"3\".")
	}
	return n, nil
}

// CSVSafe defuses a cell that a spreadsheet would evaluate as a formula
// (OWASP CSV injection): a leading = + - @, tab or carriage return gets a
// leading apostrophe.
func CSVSafe(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + s
	}
	return s
}
