// Package localpg runs a PostgreSQL server from the system's own server
// binaries, for `hospital-erp dev` and for the test harness. It never
// downloads anything. PostgreSQL refuses to run as root, so when we are
// root the server runs as the "postgres" system user.
package localpg

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// InstallHint is the one line printed when no server binaries are found.
const InstallHint = "PostgreSQL server binaries (initdb, postgres) not found: install them with " +
	"`sudo apt-get install -y postgresql` (Debian/Ubuntu), put their directory on PATH, " +
	"or set DATABASE_URL to an existing server"

// FindBinDir returns the directory holding initdb and postgres: from PATH
// first, else the newest /usr/lib/postgresql/*/bin.
func FindBinDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real // /usr/local/bin/initdb -> /usr/lib/postgresql/15/bin/initdb: the tools live there
		}
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "postgres")); err == nil {
			return dir, nil
		}
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	sort.Slice(matches, func(i, j int) bool { return versionOf(matches[i]) > versionOf(matches[j]) })
	for _, m := range matches {
		dir := filepath.Dir(m)
		if _, err := os.Stat(filepath.Join(dir, "postgres")); err == nil {
			return dir, nil
		}
	}
	return "", errors.New(InstallHint)
}

func versionOf(initdbPath string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdbPath))))
	return v
}

// Options configure Start.
type Options struct {
	// DataDir holds the cluster; it is created and initialised when empty and
	// reused otherwise.
	DataDir string
	// Port to listen on (127.0.0.1 only); 0 picks a free one.
	Port int
	// Superuser name; its password is generated at initdb and kept in
	// DataDir/../<basename>.password (outside the cluster directory).
	Superuser string
	// Ephemeral trades durability for speed (fsync off): for tests only.
	Ephemeral bool
	// Log receives the server's output; nil discards it.
	Log io.Writer
	// Settings are extra "name=value" server settings (-c), after the
	// defaults, so they win.
	Settings []string
}

// Server is a running PostgreSQL.
type Server struct {
	Port     int
	User     string
	Password string
	dataDir  string
	cmd      *exec.Cmd
	done     chan error
}

// Start initialises (when needed) and starts a server, waiting until it
// accepts connections.
func Start(ctx context.Context, o Options) (*Server, error) {
	bin, err := FindBinDir()
	if err != nil {
		return nil, err
	}
	if o.Superuser == "" {
		o.Superuser = "hospital"
	}
	dataDir, err := filepath.Abs(o.DataDir)
	if err != nil {
		return nil, err
	}
	cred, err := runAs(dataDir)
	if err != nil {
		return nil, err
	}
	pwFile := dataDir + ".password"
	password, err := ensurePassword(pwFile)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dataDir, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		if err := initdb(ctx, bin, dataDir, o, password, cred); err != nil {
			return nil, err
		}
	}
	if err := removeStalePid(dataDir); err != nil {
		return nil, err
	}
	port := o.Port
	if port == 0 {
		if port, err = freePort(); err != nil {
			return nil, err
		}
	}
	args := []string{"-D", dataDir, "-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=",
		"-c", "max_connections=200",
		"-c", "shared_buffers=128MB",
		"-c", "logging_collector=off",
	}
	if o.Ephemeral {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	for _, kv := range o.Settings {
		args = append(args, "-c", kv)
	}
	cmd := exec.Command(filepath.Join(bin, "postgres"), args...)
	cmd.Stdout, cmd.Stderr = logOrDiscard(o.Log), logOrDiscard(o.Log)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGINT, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	s := &Server{Port: port, User: o.Superuser, Password: password, dataDir: dataDir, cmd: cmd, done: make(chan error, 1)}
	go func() { s.done <- cmd.Wait() }()
	if err := s.waitReady(ctx, 30*time.Second); err != nil {
		_ = s.Stop()
		return nil, err
	}
	return s, nil
}

// URL returns a connection URL for database name.
func (s *Server) URL(name string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(s.User, s.Password),
		Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)), Path: "/" + name,
		RawQuery: "sslmode=disable"}
	return u.String()
}

// Stop shuts the server down (fast mode) and waits for it.
func (s *Server) Stop() error {
	if s.cmd.Process == nil {
		return nil
	}
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	return nil
}

// Kill stops the server abruptly (SIGKILL), as a crash would; for fault tests.
func (s *Server) Kill() { _ = s.cmd.Process.Kill(); <-s.done }

// Crash stops the server in immediate mode (SIGQUIT): every backend exits
// at once, nothing is checkpointed, and the next start runs crash
// recovery, as after a machine failure; for fault tests. Unlike Kill it
// leaves no orphaned backends holding shared memory.
func (s *Server) Crash() {
	_ = s.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

func (s *Server) waitReady(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		select {
		case err := <-s.done:
			return fmt.Errorf("postgres exited during start-up: %v (see its log)", err)
		default:
		}
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		conn, err := pgx.Connect(cctx, s.URL("postgres"))
		cancel()
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres did not accept connections within %s: %w", limit, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// CreateDatabase creates database name unless it exists.
func (s *Server) CreateDatabase(ctx context.Context, name string) error {
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if exists, err := databaseExists(ctx, conn, name); err != nil || exists {
		return err
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	return err
}

// CopyDatabase makes database to a file-level copy of from (which nobody
// may be connected to), replacing any database to. It returns false, and
// copies nothing, when from does not exist. A copy does not carry from's
// ALTER DATABASE settings: run migrate on it (it sets postgres.DatabaseSettings).
func (s *Server) CopyDatabase(ctx context.Context, from, to string) (bool, error) {
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return false, err
	}
	defer conn.Close(ctx)
	if exists, err := databaseExists(ctx, conn, from); err != nil || !exists {
		return false, err
	}
	for _, q := range []string{
		fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", pgx.Identifier{to}.Sanitize()),
		fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s STRATEGY FILE_COPY", pgx.Identifier{to}.Sanitize(), pgx.Identifier{from}.Sanitize()),
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			return false, err
		}
	}
	return true, nil
}

func databaseExists(ctx context.Context, conn *pgx.Conn, name string) (bool, error) {
	var exists bool
	err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists)
	return exists, err
}

func initdb(ctx context.Context, bin, dataDir string, o Options, password string, cred *syscall.Credential) error {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return err
	}
	pw, err := os.CreateTemp("", "initdb-pw-*")
	if err != nil {
		return err
	}
	defer os.Remove(pw.Name())
	if _, err := pw.WriteString(password + "\n"); err != nil {
		return err
	}
	pw.Close()
	if cred != nil {
		for _, p := range []string{dataDir, pw.Name()} {
			if err := os.Chown(p, int(cred.Uid), int(cred.Gid)); err != nil {
				return err
			}
		}
	}
	args := []string{"-D", dataDir, "-U", o.Superuser, "--pwfile=" + pw.Name(),
		"--auth=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8"}
	if o.Ephemeral {
		args = append(args, "--no-sync")
	}
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("initdb %s: %v\n%s", dataDir, err, strings.TrimSpace(out.String()))
	}
	return nil
}

// runAs returns the credential to run PostgreSQL with: nil for an ordinary
// user, the "postgres" user when we are root. It checks that this user can
// reach dataDir, since a root-only parent directory would fail obscurely.
func runAs(dataDir string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, errors.New("running as root: PostgreSQL refuses root and there is no 'postgres' user to run it as; install the postgresql package or run as an ordinary user")
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	parent := filepath.Dir(dataDir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, err
	}
	for dir := parent; ; dir = filepath.Dir(dir) {
		st, err := os.Stat(dir)
		if err != nil {
			return nil, err
		}
		if st.Mode().Perm()&0o001 == 0 && dir != parent {
			return nil, fmt.Errorf("running as root: PostgreSQL runs as user 'postgres', which cannot enter %s (mode %v); "+
				"set DATA_DIR to a directory under /var/tmp, or run as an ordinary user", dir, st.Mode().Perm())
		}
		if dir == "/" {
			break
		}
	}
	// The parent may be private to root (a 0700 temp dir): let postgres
	// pass through it, without letting it list or change anything there.
	if st, err := os.Stat(parent); err == nil && st.Mode().Perm()&0o001 == 0 {
		if err := os.Chmod(parent, st.Mode().Perm()|0o001); err != nil {
			return nil, err
		}
	}
	if _, err := os.Stat(dataDir); err == nil {
		if err := chownTree(dataDir, uid, gid); err != nil {
			return nil, err
		}
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func chownTree(dir string, uid, gid int) error {
	return filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

func ensurePassword(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	buf := make([]byte, 18)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	pw := hex.EncodeToString(buf)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	return pw, os.WriteFile(path, []byte(pw+"\n"), 0o600)
}

// removeStalePid deletes postmaster.pid when the process it names is gone
// (the server was killed); PostgreSQL would otherwise refuse to start.
func removeStalePid(dataDir string) error {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return nil
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil {
		return nil
	}
	if p, err := os.FindProcess(pid); err == nil && p.Signal(syscall.Signal(0)) == nil {
		return fmt.Errorf("a PostgreSQL server (pid %d) is already running on %s: is another `hospital-erp dev` running?", pid, dataDir)
	}
	return os.Remove(filepath.Join(dataDir, "postmaster.pid"))
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// FreePort returns a currently free loopback TCP port.
func FreePort() (int, error) { return freePort() }

func logOrDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// EnsureLoginRole creates (or updates the password of) a login role that is
// a member of group, so the application connects with the group's
// privileges rather than as the superuser. It returns a URL for database
// name as that role.
func (s *Server) EnsureLoginRole(ctx context.Context, role, password, group, database string) (string, error) {
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", role).Scan(&exists); err != nil {
		return "", err
	}
	verb := "CREATE"
	if exists {
		verb = "ALTER"
	}
	ident := pgx.Identifier{role}.Sanitize()
	// Passwords cannot be bind parameters in CREATE ROLE; quote as a literal.
	lit := "'" + strings.ReplaceAll(password, "'", "''") + "'"
	if _, err := conn.Exec(ctx, verb+" ROLE "+ident+" LOGIN PASSWORD "+lit); err != nil {
		return "", err
	}
	if _, err := conn.Exec(ctx, "GRANT "+pgx.Identifier{group}.Sanitize()+" TO "+ident); err != nil {
		return "", err
	}
	u := url.URL{Scheme: "postgres", User: url.UserPassword(role, password),
		Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)), Path: "/" + database, RawQuery: "sslmode=disable"}
	return u.String(), nil
}

// RandomPassword returns a random hex password for generated roles.
func RandomPassword() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Pid is the postmaster's process id (its children inherit its CPU
// affinity when set before they start).
func (s *Server) Pid() int { return s.cmd.Process.Pid }
