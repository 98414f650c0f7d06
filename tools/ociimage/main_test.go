package main

import (
	"archive/tar"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// buildStatic compiles a tiny static program standing in for hospital-erp.
func buildStatic(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module hello\n\ngo 1.26\n"), 0o644)
	src := "package main\n\nfunc main() { println(\"hello\") }\n"
	os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644)
	out := filepath.Join(dir, "hello")
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

func TestBuildImage(t *testing.T) {
	bin := buildStatic(t)
	dir := t.TempDir()
	o := Options{Binary: bin, Ref: "ghcr.io/hospital-erp/hospital-erp:1.2.3", Layout: filepath.Join(dir, "oci"), Tarball: filepath.Join(dir, "image.tar"), Version: "1.2.3", Created: time.Unix(0, 0).UTC()}
	img, err := Build(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := Write(img, o); err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.User != "65532:65532" || cf.Config.Entrypoint[0] != "/hospital-erp" || cf.OS != "linux" || cf.Architecture == "" {
		t.Errorf("config: user %q entrypoint %v os/arch %s/%s", cf.Config.User, cf.Config.Entrypoint, cf.OS, cf.Architecture)
	}
	layers, _ := img.Layers()
	if len(layers) != 1 {
		t.Fatalf("%d layers, want one on an empty base", len(layers))
	}
	rc, _ := layers[0].Uncompressed()
	defer rc.Close()
	tr := tar.NewReader(rc)
	seen := map[string]int64{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		seen[h.Name] = h.Mode
		if h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s owned by %d:%d; files are root's, read-only to the app user", h.Name, h.Uid, h.Gid)
		}
	}
	if seen["hospital-erp"] != 0o555 {
		t.Errorf("hospital-erp mode %o, want 0555 (entries: %v)", seen["hospital-erp"], seen)
	}
	if _, ok := seen["etc/passwd"]; !ok {
		t.Errorf("no /etc/passwd entry for the non-root user")
	}
	// Both outputs read back, and the tarball passes crane validate.
	p, err := layout.FromPath(o.Layout)
	if err != nil {
		t.Fatal(err)
	}
	idx, _ := p.ImageIndex()
	im, _ := idx.IndexManifest()
	want, _ := img.Digest()
	if len(im.Manifests) != 1 || im.Manifests[0].Digest != want {
		t.Errorf("OCI layout holds %v, want %s", im.Manifests, want)
	}
	if _, err := tarball.ImageFromPath(o.Tarball, nil); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "tool", "crane", "validate", "--tarball", o.Tarball)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "PASS") {
		t.Errorf("crane validate: %v\n%s", err, out)
	}
	// Reproducible: the same binary gives the same digest.
	again, err := Build(o)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := again.Digest(); d != want {
		t.Errorf("two builds of the same binary: %s and %s", want, d)
	}
}

func TestRefusesDynamicBinary(t *testing.T) {
	// Debian's /bin/sh (dash) is dynamically linked.
	sh, err := filepath.EvalSymlinks("/bin/sh")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Build(Options{Binary: sh, Ref: "example.org/x:1"})
	if err == nil || !strings.Contains(err.Error(), "dynamically linked") {
		t.Errorf("a dynamically linked binary was accepted (err %v)", err)
	}
}

// TestDockerfileMatches: the Dockerfile (for machines with a container
// engine) builds what this tool builds: an empty final base, the same
// numeric user, entrypoint, default command and ports, and pinned builder
// images.
func TestDockerfileMatches(t *testing.T) {
	b, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var froms []string
	final := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "FROM":
			froms = append(froms, f[1])
			final = map[string]string{}
		case "USER", "ENTRYPOINT", "CMD", "EXPOSE":
			final[strings.ToUpper(f[0])] = strings.Join(f[1:], " ")
		case "ADD":
			t.Errorf("Dockerfile: ADD %s; use COPY (no remote fetches)", f[1])
		}
	}
	if len(froms) < 2 || froms[len(froms)-1] != "scratch" {
		t.Fatalf("Dockerfile: the final stage must be FROM scratch, stages: %v", froms)
	}
	for _, f := range froms[:len(froms)-1] {
		if i := strings.LastIndex(f, ":"); i < 0 || f[i+1:] == "latest" || !strings.ContainsAny(f[i+1:], "0123456789") {
			t.Errorf("Dockerfile: base image %s is not pinned to a version", f)
		}
	}
	want := map[string]string{"USER": "65532:65532", "ENTRYPOINT": `["/hospital-erp"]`, "CMD": `["api"]`, "EXPOSE": "3000 9464"}
	for k, v := range want {
		if final[k] != v {
			t.Errorf("Dockerfile final stage: %s %q, the OCI build uses %q", k, final[k], v)
		}
	}
}
