package chaos

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"
)

var (
	buildOnce sync.Once
	binDir    string
	binPath   string
	buildErr  error
)

// RemoveBinary deletes what Binary built. Call it when the tests end: each
// build is 40 MB, and a run that leaves them behind fills the disk over time.
func RemoveBinary() {
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
}

// Binary builds cmd/hospital-erp once per test binary (as `make build`
// does, without the race detector: the backends under test run at
// production speed) and returns its path. The build is cached by Go, so
// it costs a link after the first time.
func Binary() (string, error) {
	buildOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		dir, err := os.MkdirTemp("", "hospital-erp-chaos-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binDir = dir
		binPath = filepath.Join(dir, "hospital-erp")
		// The go on PATH (the one running the tests, normally), else the
		// toolchain this test binary was built with.
		goBin, err := exec.LookPath("go")
		if err != nil {
			goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		cmd := exec.Command(goBin, "build", "-trimpath", "-o", binPath, "./cmd/hospital-erp")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/hospital-erp: %v\n%s", err, out)
		}
	})
	return binPath, buildErr
}

// Backend is one `hospital-erp api` process.
type Backend struct {
	Name string
	Addr string // host:port it listens on
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	log  string
}

// StartBackend starts `hospital-erp api` with env (plus LISTEN_ADDR on a
// free loopback port and METRICS_ADDR=off), its output in dir/<name>.log.
// It does not wait for readiness: see WaitReady.
func StartBackend(dir, name string, env map[string]string) (*Backend, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	b := &Backend{Name: name, Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), done: make(chan struct{}),
		log: filepath.Join(dir, name+".log")}
	full := map[string]string{"LISTEN_ADDR": b.Addr, "METRICS_ADDR": "off", "PATH": os.Getenv("PATH")}
	for k, v := range env {
		full[k] = v
	}
	keys := make([]string, 0, len(full))
	for k := range full {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	cmd := exec.Command(bin, "api")
	for _, k := range keys {
		cmd.Env = append(cmd.Env, k+"="+full[k])
	}
	f, err := os.OpenFile(b.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = f, f
	// Its own process group, killed with the test binary.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start backend %s: %w", name, err)
	}
	b.cmd = cmd
	go func() {
		b.err = cmd.Wait()
		f.Close()
		close(b.done)
	}()
	return b, nil
}

// URL is the backend's base URL.
func (b *Backend) URL() string { return "http://" + b.Addr }

// Pid is the process id.
func (b *Backend) Pid() int { return b.cmd.Process.Pid }

// WaitReady polls /health/ready until it answers 200 and returns how long
// that took.
func (b *Backend) WaitReady(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	c := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-b.done:
			return 0, fmt.Errorf("backend %s exited during start-up: %v (log %s)", b.Name, b.err, b.log)
		default:
		}
		if Ready(c, b.URL()) {
			return time.Since(start), nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("backend %s not ready: %w (log %s)", b.Name, ctx.Err(), b.log)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Ready reports whether base/health/ready answers 200.
func Ready(c *http.Client, base string) bool {
	resp, err := c.Get(base + "/health/ready")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Kill kills the process with SIGKILL, as the kernel's OOM killer or a
// lost node would: no drain, no shutdown, in-flight requests cut.
func (b *Backend) Kill() {
	_ = b.cmd.Process.Kill()
	<-b.done
}

// Terminate sends SIGTERM, as Kubernetes does to a pod it stops. Wait for
// the exit with Exited.
func (b *Backend) Terminate() { _ = b.cmd.Process.Signal(syscall.SIGTERM) }

// Exited is closed when the process has exited.
func (b *Backend) Exited() <-chan struct{} { return b.done }

// ExitErr is the process's exit status once Exited is closed (nil for 0).
func (b *Backend) ExitErr() error { return b.err }

// Stop terminates the process and waits (SIGKILL after 30 s).
func (b *Backend) Stop() {
	select {
	case <-b.done:
		return
	default:
	}
	b.Terminate()
	select {
	case <-b.done:
	case <-time.After(30 * time.Second):
		b.Kill()
	}
}

// Log returns the process's output so far.
func (b *Backend) Log() string {
	data, _ := os.ReadFile(b.log)
	return string(data)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// ReadyWatch polls a backend's /health/ready every 50 ms and records each
// change between ready (200) and not (anything else, or no answer).
type ReadyWatch struct {
	mu      sync.Mutex
	changes []ReadyChange
	stop    chan struct{}
	done    chan struct{}
}

// ReadyChange is one transition.
type ReadyChange struct {
	At    time.Time
	Ready bool
}

// WatchReady starts watching base (a backend's URL).
func WatchReady(base string) *ReadyWatch {
	w := &ReadyWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		c := &http.Client{Timeout: 3 * time.Second}
		var last *bool
		for {
			r := Ready(c, base)
			if last == nil || *last != r {
				w.mu.Lock()
				w.changes = append(w.changes, ReadyChange{At: time.Now(), Ready: r})
				w.mu.Unlock()
				last = &r
			}
			select {
			case <-w.stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return w
}

// Stop ends the watch.
func (w *ReadyWatch) Stop() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// Changes returns the transitions so far.
func (w *ReadyWatch) Changes() []ReadyChange {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]ReadyChange(nil), w.changes...)
}

// WaitFor waits for the first transition to ready (or not) at or after t
// and returns when it was seen.
func (w *ReadyWatch) WaitFor(ctx context.Context, ready bool, t time.Time) (time.Time, error) {
	for {
		for _, c := range w.Changes() {
			if c.Ready == ready && !c.At.Before(t) {
				return c.At, nil
			}
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("readiness never became %v after %s: %w", ready, t.Format(time.StampMilli), ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}
