package k8scheck

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Tool finds a command on PATH (or in /usr/sbin, where Debian puts some
// daemons). A missing tool is an error that says how to install it: the
// checks never skip.
func Tool(name, install string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s is not installed: %s", name, install)
}

// Install hints for the tools the checks need.
const (
	InstallEtcd      = "apt-get install -y etcd-server"
	InstallPromtool  = "apt-get install -y prometheus"
	InstallPgbouncer = "apt-get install -y pgbouncer"
)

// CacheDir is where built tools and generated schemas are kept between runs:
// $K8SCHECK_CACHE, else hospital-erp-k8scheck inside the Go build cache (which
// CI keeps). Everything in it is keyed by the versions that produced it.
func CacheDir() (string, error) {
	if d := os.Getenv("K8SCHECK_CACHE"); d != "" {
		return d, os.MkdirAll(d, 0o755)
	}
	out, err := exec.Command("go", "env", "GOCACHE").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOCACHE: %v", err)
	}
	gocache := strings.TrimSpace(string(out))
	if gocache == "" || gocache == "off" {
		gocache = os.TempDir()
	}
	d := filepath.Join(gocache, "hospital-erp-k8scheck")
	return d, os.MkdirAll(d, 0o755)
}

// GoBuild builds pkg inside the module at moduleDir into out. The go command
// relinks only when something changed, so a warm call costs about a second.
func GoBuild(moduleDir, pkg, out string, ldflags string) error {
	args := []string{"build", "-trimpath"}
	if ldflags != "" {
		args = append(args, "-ldflags", ldflags)
	}
	args = append(args, "-o", out, pkg)
	cmd := exec.Command("go", args...)
	cmd.Dir = moduleDir
	// No VCS stamping: the binaries must not relink on every commit.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=readonly -buildvcs=false")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s (in %s): %v\n%s", pkg, moduleDir, err, b)
	}
	return nil
}

// ModuleDir downloads module@version into the module cache (a no-op when it
// is there) and returns its directory after checking the module's hash
// against the one pinned here, so the schemas are exactly those reviewed.
func ModuleDir(module, version, sum string) (string, error) {
	tmp, err := os.MkdirTemp("", "k8scheck-mod")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.Command("go", "mod", "download", "-json", module+"@"+version)
	// Outside any module: only this module's zip is fetched, never its
	// dependencies (Argo CD's would not build with this Go anyway).
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local")
	out, _ := cmd.Output()
	var info struct{ Dir, Sum, Error string }
	if err := json.Unmarshal(out, &info); err != nil {
		return "", fmt.Errorf("go mod download %s@%s: %v: %s", module, version, err, out)
	}
	if info.Dir == "" {
		return "", fmt.Errorf("go mod download %s@%s: %s", module, version, info.Error)
	}
	if info.Sum != sum {
		return "", fmt.Errorf("%s@%s has hash %s, pinned %s", module, version, info.Sum, sum)
	}
	return info.Dir, nil
}

// HashFiles returns a short hash of the named files' contents, to key cache
// entries by the inputs that produced them.
func HashFiles(paths ...string) (string, error) {
	h := sha256.New()
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", filepath.Base(p), len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}
