package httpapi

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/hospital-erp/hospital-erp/internal/httpx"
)

//go:embed openapi.yaml
var openapiYAML []byte

// Spec is the parsed OpenAPI document.
type Spec struct {
	JSON []byte
	doc  map[string]any
}

// LoadSpec parses the embedded document. It fails only on a broken build.
func LoadSpec() (*Spec, error) {
	var doc map[string]any
	if err := yaml.Unmarshal(openapiYAML, &doc); err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("openapi.yaml to JSON: %w", err)
	}
	return &Spec{JSON: b, doc: doc}, nil
}

// Operations returns "METHOD /path" for every operation in the document.
func (s *Spec) Operations() []string {
	var out []string
	paths, _ := s.doc["paths"].(map[string]any)
	for path, item := range paths {
		ops, _ := item.(map[string]any)
		for method := range ops {
			switch method {
			case "get", "post", "put", "patch", "delete":
				out = append(out, strings.ToUpper(method)+" "+path)
			}
		}
	}
	sort.Strings(out)
	return out
}

var spec = mustSpec()

func mustSpec() *Spec {
	s, err := LoadSpec()
	if err != nil {
		panic(err)
	}
	return s
}

func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(spec.JSON)
	return nil
}

// docsStyle is the reference page's only style; the page's CSP allows it
// by hash rather than allowing inline styles in general.
const docsStyle = `body{font:16px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1b2a35}
h1{font-size:1.6rem}h2{margin-top:2rem;border-bottom:1px solid #c9d3da;text-transform:capitalize}
.op{border:1px solid #c9d3da;border-radius:6px;padding:.6rem 1rem;margin:.8rem 0}
.m{display:inline-block;min-width:4.2rem;font:600 .85rem ui-monospace,monospace;color:#fff;background:#0b5d7a;border-radius:4px;padding:.1rem .4rem;text-align:center}
.m.POST{background:#1d6b37}.m.DELETE{background:#9b1c1c}.m.PUT,.m.PATCH{background:#7a4b00}
code{font:.9rem ui-monospace,monospace}td,th{text-align:left;padding:.15rem .6rem .15rem 0;vertical-align:top}
p.d{white-space:pre-line;margin:.4rem 0}`

var docsCSP = "default-src 'none'; style-src 'sha256-" + hashB64(docsStyle) + "'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

func hashB64(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base64.StdEncoding.EncodeToString(sum[:])
}

var docsTmpl = template.Must(template.New("docs").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{{.Title}} — reference</title><style>{{.Style}}</style></head><body>
<h1>{{.Title}} <small>{{.Version}}</small></h1>
<p class="d">{{.Description}}</p>
<p>Machine-readable: <a href="/api/v1/openapi.json">/api/v1/openapi.json</a> (OpenAPI 3.1).</p>
{{range .Tags}}<h2 id="{{.Name}}">{{.Name}}</h2>{{if .Description}}<p>{{.Description}}</p>{{end}}
{{range .Ops}}<div class="op" id="{{.ID}}"><span class="m {{.Method}}">{{.Method}}</span> <code>{{.Path}}</code> — {{.Summary}}
{{if .Description}}<p class="d">{{.Description}}</p>{{end}}
{{if .Params}}<table><tr><th>Parameter</th><th>In</th><th>Description</th></tr>{{range .Params}}<tr><td><code>{{.Name}}</code>{{if .Required}} *{{end}}</td><td>{{.In}}</td><td>{{.Description}}</td></tr>{{end}}</table>{{end}}
{{if .Body}}<p>Body: <code>{{.Body}}</code></p>{{end}}
<p>Responses: {{range $i, $r := .Responses}}{{if $i}}, {{end}}<code>{{$r}}</code>{{end}}</p></div>{{end}}{{end}}
</body></html>`))

type docsOp struct {
	ID, Method, Path, Summary, Description, Body string
	Params                                       []docsParam
	Responses                                    []string
}

type docsParam struct {
	Name, In, Description string
	Required              bool
}

type docsTag struct {
	Name, Description string
	Ops               []docsOp
}

func (s *Server) handleDocs(w http.ResponseWriter, r *http.Request) error {
	var buf bytes.Buffer
	if err := docsTmpl.Execute(&buf, docsPage()); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", docsCSP)
	httpx.DocumentHeaders(w.Header())
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(buf.Bytes())
	return nil
}

func docsPage() map[string]any {
	doc := spec.doc
	info, _ := doc["info"].(map[string]any)
	comps, _ := doc["components"].(map[string]any)
	sharedParams, _ := comps["parameters"].(map[string]any)
	var tags []*docsTag
	byName := map[string]*docsTag{}
	for _, t := range asList(doc["tags"]) {
		tm, _ := t.(map[string]any)
		tag := &docsTag{Name: str(tm["name"]), Description: str(tm["description"])}
		tags = append(tags, tag)
		byName[tag.Name] = tag
	}
	paths, _ := doc["paths"].(map[string]any)
	keys := make([]string, 0, len(paths))
	for p := range paths {
		keys = append(keys, p)
	}
	sort.Strings(keys)
	for _, path := range keys {
		item, _ := paths[path].(map[string]any)
		for _, method := range []string{"get", "post", "put", "patch", "delete"} {
			op, ok := item[method].(map[string]any)
			if !ok {
				continue
			}
			o := docsOp{ID: str(op["operationId"]), Method: strings.ToUpper(method), Path: path,
				Summary: str(op["summary"]), Description: str(op["description"])}
			for _, p := range asList(op["parameters"]) {
				pm, _ := p.(map[string]any)
				if ref := str(pm["$ref"]); ref != "" {
					pm, _ = sharedParams[ref[strings.LastIndex(ref, "/")+1:]].(map[string]any)
				}
				req, _ := pm["required"].(bool)
				o.Params = append(o.Params, docsParam{Name: str(pm["name"]), In: str(pm["in"]), Description: str(pm["description"]), Required: req})
			}
			if rb, ok := op["requestBody"].(map[string]any); ok {
				content, _ := rb["content"].(map[string]any)
				for ct, v := range content {
					schema, _ := v.(map[string]any)["schema"].(map[string]any)
					ref := str(schema["$ref"])
					o.Body = ct + " " + ref[strings.LastIndex(ref, "/")+1:]
				}
			}
			resps, _ := op["responses"].(map[string]any)
			for code := range resps {
				o.Responses = append(o.Responses, code)
			}
			sort.Strings(o.Responses)
			tagNames := asList(op["tags"])
			if len(tagNames) > 0 {
				if t := byName[str(tagNames[0])]; t != nil {
					t.Ops = append(t.Ops, o)
				}
			}
		}
	}
	return map[string]any{"Title": str(info["title"]), "Version": str(info["version"]),
		"Description": str(info["description"]), "Style": template.CSS(docsStyle), "Tags": tags}
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// BrokenRefs returns every "$ref" in the document that points nowhere.
func (s *Spec) BrokenRefs() []string {
	var broken []string
	var walk func(v any)
	walk = func(v any) {
		switch t := v.(type) {
		case map[string]any:
			for k, x := range t {
				if k == "$ref" {
					if ref, _ := x.(string); !s.resolves(ref) {
						broken = append(broken, ref)
					}
					continue
				}
				walk(x)
			}
		case []any:
			for _, x := range t {
				walk(x)
			}
		}
	}
	walk(s.doc)
	return broken
}

func (s *Spec) resolves(ref string) bool {
	if !strings.HasPrefix(ref, "#/") {
		return false
	}
	var cur any = s.doc
	for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return false
		}
		if cur, ok = m[part]; !ok {
			return false
		}
	}
	return true
}
