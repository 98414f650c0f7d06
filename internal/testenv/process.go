package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hospital-erp/hospital-erp/internal/localpg"
)

// findBinary looks on PATH and in the sbin directories Debian uses.
func findBinary(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin"} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found: %s", name, AptLine)
}

// process is a child server process that dies with the test binary.
type process struct {
	cmd  *exec.Cmd
	done chan error
}

func startProcess(bin string, args []string, logPath string, cred *syscall.Credential) (*process, error) {
	cmd := exec.Command(bin, args...)
	if f, err := os.Create(logPath); err == nil {
		cmd.Stdout, cmd.Stderr = f, f
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", filepath.Base(bin), err)
	}
	p := &process{cmd: cmd, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	return p, nil
}

func (p *process) signal(sig syscall.Signal) { _ = p.cmd.Process.Signal(sig) }

func (p *process) stop(sig syscall.Signal) {
	p.signal(sig)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// waitPort waits until addr accepts TCP connections or the process exits.
func waitPort(p *process, addr, logPath string) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.done:
			p.done <- err
			b, _ := os.ReadFile(logPath)
			return fmt.Errorf("exited during start-up: %v\n%s", err, lastLines(string(b), 10))
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("%s not listening after 15s", addr)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// postgresCred returns the 'postgres' user's credential when we are root
// (PgBouncer, like PostgreSQL, refuses to run as root), else nil.
func postgresCred() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, errors.New("running as root needs a 'postgres' user to run PgBouncer: " + AptLine)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// PgBouncer is a PgBouncer in transaction pooling mode in front of a
// PostgreSQL server, accepting any database name.
type PgBouncer struct {
	Port     int
	user     string
	password string
	dir      string
	bin      string
	cred     *syscall.Credential
	proc     *process
}

// StartPgBouncer starts PgBouncer under dir with a server pool of poolSize
// connections per database and user. Clients log in as the server's
// superuser or as one of users (name -> password); PgBouncer logs in to
// PostgreSQL as the same user.
func StartPgBouncer(dir string, pg *localpg.Server, poolSize int, users map[string]string) (*PgBouncer, error) {
	bin, err := findBinary("pgbouncer")
	if err != nil {
		return nil, err
	}
	cred, err := postgresCred()
	if err != nil {
		return nil, err
	}
	port, err := localpg.FreePort()
	if err != nil {
		return nil, err
	}
	bdir := filepath.Join(dir, fmt.Sprintf("pgbouncer-%d", port))
	if err := os.MkdirAll(bdir, 0o755); err != nil {
		return nil, err
	}
	b := &PgBouncer{Port: port, user: pg.User, password: pg.Password, dir: bdir, bin: bin, cred: cred}
	ini := fmt.Sprintf(`[databases]
* = host=127.0.0.1 port=%d

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = scram-sha-256
auth_file = %s
admin_users = %s
pool_mode = transaction
default_pool_size = %d
max_client_conn = 2000
server_reset_query =
ignore_startup_parameters = extra_float_digits,search_path
server_login_retry = 1
log_connections = 0
log_disconnections = 0
`, pg.Port, port, filepath.Join(bdir, "userlist.txt"), pg.User, poolSize)
	userlist := fmt.Sprintf("%q %q\n", pg.User, pg.Password)
	for u, p := range users {
		userlist += fmt.Sprintf("%q %q\n", u, p)
	}
	files := map[string]string{
		"pgbouncer.ini": ini,
		"userlist.txt":  userlist,
	}
	for name, content := range files {
		path := filepath.Join(bdir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			return nil, err
		}
		if cred != nil {
			if err := os.Chown(path, int(cred.Uid), int(cred.Gid)); err != nil {
				return nil, err
			}
		}
	}
	if cred != nil {
		_ = os.Chown(bdir, int(cred.Uid), int(cred.Gid))
	}
	return b, b.Start()
}

// Start (re)starts the PgBouncer process.
func (b *PgBouncer) Start() error {
	logPath := filepath.Join(b.dir, "pgbouncer.log")
	p, err := startProcess(b.bin, []string{filepath.Join(b.dir, "pgbouncer.ini")}, logPath, b.cred)
	if err != nil {
		return err
	}
	b.proc = p
	if err := waitPort(p, b.addr(), logPath); err != nil {
		return fmt.Errorf("pgbouncer: %w", err)
	}
	return nil
}

func (b *PgBouncer) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(b.Port)) }

// URL returns a connection URL for database name through this PgBouncer,
// as the superuser.
func (b *PgBouncer) URL(name string) string { return b.UserURL(b.user, b.password, name) }

// UserURL returns a connection URL for database name as user.
func (b *PgBouncer) UserURL(user, password, name string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(user, password), Host: b.addr(),
		Path: "/" + name, RawQuery: "sslmode=disable"}
	return u.String()
}

// Stop shuts PgBouncer down.
func (b *PgBouncer) Stop() { b.proc.stop(syscall.SIGINT) }

// Kill kills PgBouncer abruptly.
func (b *PgBouncer) Kill() { b.proc.stop(syscall.SIGKILL) }

// Admin runs a command (PAUSE, RESUME, SHOW POOLS ...) on the admin console.
func (b *PgBouncer) Admin(ctx context.Context, command string) error {
	cfg, err := pgx.ParseConfig(b.URL("pgbouncer"))
	if err != nil {
		return err
	}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, command)
	return err
}

// Redis is a redis-server without persistence (or a Sentinel).
type Redis struct {
	Port     int
	dir      string
	bin      string
	args     []string // extra arguments (replication)
	sentinel bool     // bin is redis-sentinel with dir/sentinel.conf
	proc     *process
}

// StartRedis starts a Redis under dir.
func StartRedis(dir string) (*Redis, error) {
	bin, err := findBinary("redis-server")
	if err != nil {
		return nil, err
	}
	port, err := localpg.FreePort()
	if err != nil {
		return nil, err
	}
	r := &Redis{Port: port, dir: filepath.Join(dir, fmt.Sprintf("redis-%d", port)), bin: bin}
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return nil, err
	}
	return r, r.Start()
}

// NewRedis starts a Redis of t's own (for tests that stop it), stopped when t ends.
func NewRedis(t interface {
	Helper()
	Fatalf(string, ...any)
	Cleanup(func())
}, dir string) *Redis {
	t.Helper()
	r, err := StartRedis(dir)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(r.Stop)
	return r
}

// Start (re)starts the server on the same port.
func (r *Redis) Start() error {
	logPath := filepath.Join(r.dir, "redis.log")
	args := []string{"--port", strconv.Itoa(r.Port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir, "--daemonize", "no"}
	if r.sentinel {
		args = []string{filepath.Join(r.dir, "sentinel.conf"), "--daemonize", "no"}
	}
	p, err := startProcess(r.bin, append(args, r.args...), logPath, nil)
	if err != nil {
		return err
	}
	r.proc = p
	if err := waitPort(p, r.Addr(), logPath); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	return nil
}

// Addr is host:port.
func (r *Redis) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.Port)) }

// Pause stops the server process (SIGSTOP): it keeps its connections but
// answers nothing, as a hung or overloaded server. Resume continues it.
func (r *Redis) Pause() {
	if r.proc != nil {
		r.proc.signal(syscall.SIGSTOP)
	}
}

// Resume continues a paused server (SIGCONT).
func (r *Redis) Resume() {
	if r.proc != nil {
		r.proc.signal(syscall.SIGCONT)
	}
}

// Stop kills the server (as a crash would); Start brings it back on the
// same port.
func (r *Redis) Stop() {
	if r.proc != nil {
		r.proc.stop(syscall.SIGKILL)
		r.proc = nil
	}
}

// Pid is the PgBouncer process id (to pin it to a CPU in benchmarks).
func (b *PgBouncer) Pid() int { return b.proc.cmd.Process.Pid }

// Pid is the Redis process id.
func (r *Redis) Pid() int { return r.proc.cmd.Process.Pid }
