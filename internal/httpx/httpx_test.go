package httpx

import (
	"encoding/json"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/hospital-erp/hospital-erp/internal/hospital"
)

func TestClientIP(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	cases := []struct {
		remote, xff, want string
	}{
		{"203.0.113.7:5000", "", "203.0.113.7"},
		{"203.0.113.7:5000", "1.2.3.4", "203.0.113.7"},              // untrusted peer: header ignored
		{"10.1.2.3:5000", "198.51.100.9", "198.51.100.9"},           // through the ingress
		{"10.1.2.3:5000", "6.6.6.6, 198.51.100.9", "198.51.100.9"},  // spoofed left part ignored
		{"10.1.2.3:5000", "198.51.100.9, 10.9.9.9", "198.51.100.9"}, // chain of proxies
		{"10.1.2.3:5000", "garbage", "10.1.2.3"},                    // unparsable: stop at the proxy
		{"[::ffff:203.0.113.7]:5000", "", "203.0.113.7"},
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.remote
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		if got := ClientIP(r, proxies).String(); got != c.want {
			t.Errorf("remote %s xff %q: got %s, want %s", c.remote, c.xff, got, c.want)
		}
	}
}

func TestDecode(t *testing.T) {
	type in struct {
		Name string `json:"name"`
		Age  int    `json:"age"`
	}
	cases := []struct {
		ct, body, code, field string
	}{
		{"application/json", `{"name":"a","age":1}`, "", ""},
		{"application/json; charset=utf-8", `{"name":"a"}`, "", ""},
		{"text/plain", `{}`, hospital.EUNSUPPORTED, ""},
		{"application/json", `{"nom":"a"}`, hospital.EINVALID, "nom"},
		{"application/json", `{"age":"x"}`, hospital.EINVALID, "age"},
		{"application/json", `{"name":"a"}{}`, hospital.EINVALID, ""},
		{"application/json", `{`, hospital.EINVALID, ""},
		{"application/json", ``, hospital.EINVALID, ""},
		{"application/json", `null`, "", ""},
	}
	for _, c := range cases {
		r := httptest.NewRequest("POST", "/", strings.NewReader(c.body))
		r.Header.Set("Content-Type", c.ct)
		var v in
		err := Decode(r, &v)
		if hospital.ErrorCode(err) != c.code {
			t.Errorf("%s %q: code %q (%v), want %q", c.ct, c.body, hospital.ErrorCode(err), err, c.code)
		}
		if c.field != "" {
			he, _ := err.(*hospital.Error)
			if he == nil || he.Fields[c.field] == "" {
				t.Errorf("%q: no message for field %s: %v", c.body, c.field, err)
			}
		}
	}
}

func TestParsePage(t *testing.T) {
	for q, ok := range map[string]bool{"": true, "limit=200&sort=-name": true, "limit=201": false, "sort=drop": false, "limit=-1": false} {
		r := httptest.NewRequest("GET", "/?"+q, nil)
		_, err := ParsePage(r, []string{"name"}, "name")
		if (err == nil) != ok {
			t.Errorf("%q: %v", q, err)
		}
	}
}

// A cached record is sent as json.Marshal encoded it: the client must get
// the same bytes and headers as when the handler encodes the value.
func TestEncodedJSONMatchesJSON(t *testing.T) {
	v := struct {
		Name  string            `json:"name"`
		Note  string            `json:"note,omitempty"`
		Tags  []string          `json:"tags"`
		Extra map[string]string `json:"extra"`
	}{Name: "Zoë <O'Brien> & \u2028co", Tags: []string{"a"}, Extra: map[string]string{"b": "2", "a": "1"}}
	encoded := httptest.NewRecorder()
	JSON(encoded, 200, v)
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	cached := httptest.NewRecorder()
	EncodedJSON(cached, 200, b)
	if encoded.Body.String() != cached.Body.String() {
		t.Fatalf("bodies differ:\n JSON:        %q\n EncodedJSON: %q", encoded.Body, cached.Body)
	}
	if !reflect.DeepEqual(encoded.Header(), cached.Header()) || encoded.Code != cached.Code {
		t.Fatalf("headers differ: %v, %v", encoded.Header(), cached.Header())
	}
}
