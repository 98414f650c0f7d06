package web

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed static
var staticFS embed.FS

// assetTypes are the content types of the files in static/. A file of
// another kind fails the start rather than being served as a guess.
var assetTypes = map[string]string{
	".css": "text/css; charset=utf-8",
	".js":  "text/javascript; charset=utf-8",
	".svg": "image/svg+xml",
	".png": "image/png",
	".ico": "image/x-icon",
}

type asset struct {
	url   string // /static/app.<hash>.css
	ctype string
	body  []byte
}

// assets are the static files under content-hashed names: a changed file
// gets a new URL, so every URL can be cached for a year.
type assets struct {
	byName   map[string]*asset // app.css
	byHashed map[string]*asset // app.<hash>.css
}

func loadAssets() (*assets, error) {
	a := &assets{byName: map[string]*asset{}, byHashed: map[string]*asset{}}
	entries, err := fs.ReadDir(staticFS, "static")
	if err != nil {
		return nil, fmt.Errorf("web: static files: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		name := e.Name()
		ext := path.Ext(name)
		ctype, ok := assetTypes[ext]
		if !ok {
			return nil, fmt.Errorf("web: static file %s: unknown type %q", name, ext)
		}
		body, err := fs.ReadFile(staticFS, "static/"+name)
		if err != nil {
			return nil, fmt.Errorf("web: static file %s: %w", name, err)
		}
		sum := sha256.Sum256(body)
		hashed := strings.TrimSuffix(name, ext) + "." + hex.EncodeToString(sum[:])[:12] + ext
		f := &asset{url: "/static/" + hashed, ctype: ctype, body: body}
		a.byName[name] = f
		a.byHashed[hashed] = f
	}
	return a, nil
}

// path is the template function asset: "app.css" -> "/static/app.<hash>.css".
// An unknown name fails the page (and the template tests).
func (a *assets) path(name string) (string, error) {
	f, ok := a.byName[name]
	if !ok {
		return "", fmt.Errorf("web: no static file %q", name)
	}
	return f.url, nil
}

func (s *Server) handleStatic(w http.ResponseWriter, r *http.Request) {
	f, ok := s.assets.byHashed[r.PathValue("name")]
	if !ok {
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, "404 page not found", http.StatusNotFound)
		return
	}
	h := w.Header()
	h.Set("Content-Type", f.ctype)
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(f.body)
	}
}
