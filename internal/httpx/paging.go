package httpx

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/hospital-erp/hospital-erp/internal/hospital"
)

// PageRequest is the paging part of a list request: ?limit=&cursor=&sort=.
type PageRequest struct {
	Limit  int
	Cursor string
	// Sort is one of the endpoint's allowed keys, "-" prefixed for descending.
	Sort string
}

// Page is one page of a list response. NextCursor is empty on the last page.
type Page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
	Sort       string `json:"sort"`
	Limit      int    `json:"limit"`
}

// ParsePage reads limit (1..200, default 50), cursor and sort. sort must be
// one of allowed, optionally prefixed with "-"; anything else is refused,
// so a sort parameter never reaches SQL.
func ParsePage(r *http.Request, allowed []string, defaultSort string) (PageRequest, error) {
	q := r.URL.Query()
	p := PageRequest{Limit: 50, Cursor: q.Get("cursor"), Sort: defaultSort}
	var v hospital.Validation
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		v.Check(err == nil && n >= 1 && n <= 200, "limit", "must be a whole number from 1 to 200")
		p.Limit = n
	}
	if s := q.Get("sort"); s != "" {
		key := strings.TrimPrefix(s, "-")
		ok := false
		for _, a := range allowed {
			ok = ok || a == key
		}
		v.Check(ok, "sort", "must be one of "+strings.Join(allowed, ", ")+" (prefix - for descending)")
		p.Sort = s
	}
	if len(p.Cursor) > 512 {
		v.Add("cursor", "is not a cursor this API returned")
	}
	return p, v.Err()
}

// EncodeCursor turns the last row's sort key into an opaque cursor.
func EncodeCursor(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeCursor reads a cursor made by EncodeCursor into v.
func DecodeCursor(s string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, v)
	}
	if err != nil {
		return &hospital.Error{Code: hospital.EINVALID, Message: "Some fields are not valid.",
			Fields: map[string]string{"cursor": "is not a cursor this API returned"}}
	}
	return nil
}
