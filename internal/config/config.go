// Package config reads the process configuration from the environment
// (12-factor). Every secret can also be read from a file named by NAME_FILE,
// which is how Kubernetes mounts secrets. Bad or missing settings stop the
// start with a message naming the variable.
package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Config is every setting of every subcommand. Zero values are never used:
// Load fills each field from the environment or from its default.
type Config struct {
	ListenAddr  string
	MetricsAddr string
	LogLevel    slog.Level

	DatabaseURL          string
	DatabaseMaxConns     int32
	DatabaseStmtTimeout  time.Duration
	DatabasePoolWait     time.Duration
	DatabaseConnectRetry time.Duration

	RedisURL           string
	RedisSentinelAddrs []string
	RedisMasterName    string
	RedisKeyPrefix     string
	DebugPprof         bool
	RedisPassword      string
	RedisDialTimeout   time.Duration
	RedisTimeout       time.Duration

	CacheTTL        time.Duration
	RateLimitIP     Rate
	RateLimitUser   Rate
	RateLimitLogin  Rate
	TrustedProxies  []netip.Prefix
	MaxBodyBytes    int64
	RequestTimeout  time.Duration
	DrainDelay      time.Duration
	ShutdownTimeout time.Duration
	WebSocketPing   time.Duration
	// Event streams open at once: per user, per process.
	EventStreamsPerUser, EventStreams int
	EventReplayBuffer                 int

	JWTPrivateKeys     string // PEM, one or more Ed25519 keys; the first signs
	JWTIssuer          string
	JWTAudience        string
	AccessTokenTTL     time.Duration
	SessionIdleTimeout time.Duration
	SessionMaxLifetime time.Duration
	RefreshReuseGrace  time.Duration
	MFAKey             []byte
	EmergencyAccessTTL time.Duration
	AuditSealInterval  time.Duration

	AuditVerifyInterval time.Duration // background verification of the recent chain

	APIURL        string
	PublicURL     string
	WebSessionKey []byte
	CookieSecure  bool

	Location *time.Location

	DataDir  string
	DemoData bool
}

// Rate is a number of events allowed per period, written "100/1m".
type Rate struct {
	N      int
	Period time.Duration
}

func (r Rate) String() string { return fmt.Sprintf("%d/%s", r.N, r.Period) }

// ParseRate parses "N/duration", for example "600/1m".
func ParseRate(s string) (Rate, error) {
	n, p, ok := strings.Cut(s, "/")
	if !ok {
		return Rate{}, errors.New(`want "count/period", for example "600/1m"`)
	}
	count, err := strconv.Atoi(strings.TrimSpace(n))
	if err != nil || count <= 0 {
		return Rate{}, errors.New("count must be a positive integer")
	}
	period, err := time.ParseDuration(strings.TrimSpace(p))
	if err != nil || period <= 0 {
		return Rate{}, errors.New("period must be a positive duration such as 1m")
	}
	return Rate{N: count, Period: period}, nil
}

// Command names, used to say which settings apply where.
const (
	CmdAPI     = "api"
	CmdWeb     = "web"
	CmdMigrate = "migrate"
	CmdDev     = "dev"
	CmdSeed    = "seed"
	CmdAudit   = "audit"
	CmdBackup  = "backup"
	CmdRestore = "restore"
)

type option struct {
	name     string
	def      string
	help     string
	secret   bool
	required map[string]bool // commands for which an empty value is an error
	cmds     []string
	set      func(c *Config, v string) error
}

func cmds(c ...string) []string { return c }

var (
	server  = cmds(CmdAPI, CmdWeb, CmdDev)
	backend = cmds(CmdAPI, CmdDev)
	dbUsers = cmds(CmdAPI, CmdMigrate, CmdDev, CmdSeed, CmdAudit, CmdBackup, CmdRestore)
	webOnly = cmds(CmdWeb, CmdDev)
)

var options = []option{
	{name: "LISTEN_ADDR", def: ":3000", cmds: server, help: "HTTP address of the API, the web UI, or both (dev).",
		set: func(c *Config, v string) error { c.ListenAddr = v; return nil }},
	{name: "METRICS_ADDR", def: ":9464", cmds: server, help: `Prometheus /metrics address, kept off the public port; "off" disables it.`,
		set: func(c *Config, v string) error { c.MetricsAddr = v; return nil }},
	{name: "LOG_LEVEL", def: "info", cmds: cmds(CmdAPI, CmdWeb, CmdMigrate, CmdDev, CmdSeed, CmdAudit, CmdBackup, CmdRestore), help: "debug, info, warn or error.",
		set: func(c *Config, v string) error { return c.LogLevel.UnmarshalText([]byte(v)) }},

	{name: "DATABASE_URL", secret: true, cmds: dbUsers,
		required: req(CmdAPI, CmdMigrate, CmdSeed, CmdAudit, CmdBackup, CmdRestore),
		help:     "PostgreSQL URL. For api: through PgBouncer (transaction pooling), as a member of the hospital_app role. For migrate: PostgreSQL directly, as the schema owner. For backup: directly, as the owner or a role that reads everything (pg_read_all_data). For restore: directly, as a superuser (rds_superuser on RDS). dev starts a local server when unset.",
		set:      func(c *Config, v string) error { c.DatabaseURL = v; return checkURL(v, "postgres", "postgresql") }},
	{name: "DATABASE_MAX_CONNS", def: "10", cmds: backend, help: "Connections this process opens to PgBouncer.",
		set: func(c *Config, v string) error { n, err := positiveInt(v); c.DatabaseMaxConns = int32(n); return err }},
	{name: "DATABASE_STATEMENT_TIMEOUT", def: "5s", cmds: backend, help: "statement_timeout set for every transaction (transaction-local, like SET LOCAL).",
		set: func(c *Config, v string) error { return duration(v, &c.DatabaseStmtTimeout) }},
	{name: "DATABASE_POOL_WAIT", def: "2s", cmds: backend, help: "How long a request waits for one of the DATABASE_MAX_CONNS connections when all are in use; past it the request is refused at once with 503 and Retry-After (load shedding: an overload fails fast and another replica or a retry takes the work, instead of every request queueing to its REQUEST_TIMEOUT). 0 waits until the request's deadline.",
		set: func(c *Config, v string) error { return duration(v, &c.DatabasePoolWait) }},
	{name: "DATABASE_CONNECT_TIMEOUT", def: "60s", cmds: dbUsers, help: "How long start-up waits for the database to accept connections.",
		set: func(c *Config, v string) error { return duration(v, &c.DatabaseConnectRetry) }},

	{name: "REDIS_URL", secret: true, cmds: backend, help: "redis:// or rediss:// URL. Unset (and no sentinels): an in-process cache, limiter and event bus (one replica only).",
		set: func(c *Config, v string) error { c.RedisURL = v; return checkURL(v, "redis", "rediss") }},
	{name: "REDIS_SENTINEL_ADDRS", cmds: backend, help: "Comma-separated host:port of Redis Sentinels; when set, REDIS_MASTER_NAME is required and REDIS_URL is ignored.",
		set: func(c *Config, v string) error { c.RedisSentinelAddrs = splitList(v); return nil }},
	{name: "REDIS_MASTER_NAME", def: "mymaster", cmds: backend, help: "Sentinel master name.",
		set: func(c *Config, v string) error { c.RedisMasterName = v; return nil }},
	{name: "DEBUG_PPROF", def: "false", cmds: server, help: "Serve Go's profiler at /debug/pprof/ on METRICS_ADDR (never on the public port); for performance work.",
		set: func(c *Config, v string) error { return boolean(v, &c.DebugPprof) }},
	{name: "REDIS_KEY_PREFIX", def: "hospital:", cmds: backend, help: "Prefix of every Redis key and channel (cache, rate limits, events): lets environments share one Redis.",
		set: func(c *Config, v string) error {
			if v == "" || len(v) > 64 || strings.ContainsAny(v, " *?[]") {
				return errors.New("must be 1 to 64 characters without spaces or glob characters")
			}
			c.RedisKeyPrefix = v
			return nil
		}},
	{name: "REDIS_PASSWORD", secret: true, cmds: backend, help: "Redis AUTH password (for sentinel setups; a REDIS_URL carries its own).",
		set: func(c *Config, v string) error { c.RedisPassword = v; return nil }},
	{name: "REDIS_DIAL_TIMEOUT", def: "250ms", cmds: backend, help: "Redis connect timeout; short, because a slow Redis must not slow requests.",
		set: func(c *Config, v string) error { return duration(v, &c.RedisDialTimeout) }},
	{name: "REDIS_TIMEOUT", def: "150ms", cmds: backend, help: "Redis read/write timeout per command.",
		set: func(c *Config, v string) error { return duration(v, &c.RedisTimeout) }},

	{name: "CACHE_TTL", def: "5m", cmds: backend, help: "Time-to-live of cached API responses (invalidated explicitly on writes).",
		set: func(c *Config, v string) error { return duration(v, &c.CacheTTL) }},
	{name: "RATE_LIMIT_IP", def: "1200/1m", cmds: backend, help: "Requests per client IP and period, for requests without a signed-in user (sign-in, public pages).",
		set: func(c *Config, v string) error { return rate(v, &c.RateLimitIP) }},
	{name: "RATE_LIMIT_USER", def: "1200/1m", cmds: backend, help: "Requests per signed-in user and period (instead of the IP limit: staff behind one NAT address are limited each).",
		set: func(c *Config, v string) error { return rate(v, &c.RateLimitUser) }},
	{name: "RATE_LIMIT_LOGIN", def: "10/1m", cmds: backend, help: "Login attempts per client IP and per username and period (enforced in-process too when Redis is down).",
		set: func(c *Config, v string) error { return rate(v, &c.RateLimitLogin) }},
	{name: "TRUSTED_PROXIES", def: "127.0.0.1/32,::1/128", cmds: server, help: "CIDRs of proxies (the ingress) whose X-Forwarded-For is believed for the client IP.",
		set: func(c *Config, v string) error { return prefixes(v, &c.TrustedProxies) }},
	{name: "MAX_BODY_BYTES", def: "1048576", cmds: server, help: "Largest request body accepted.",
		set: func(c *Config, v string) error { n, err := positiveInt(v); c.MaxBodyBytes = int64(n); return err }},
	{name: "REQUEST_TIMEOUT", def: "15s", cmds: server, help: "Deadline of one request's work (WebSockets excepted).",
		set: func(c *Config, v string) error { return duration(v, &c.RequestTimeout) }},
	{name: "DRAIN_DELAY", def: "5s", cmds: server, help: "After SIGTERM: time readiness reports 503 before the server stops accepting, so load balancers drain first. Match the pod's preStop.",
		set: func(c *Config, v string) error { return duration(v, &c.DrainDelay) }},
	{name: "SHUTDOWN_TIMEOUT", def: "20s", cmds: server, help: "After the drain delay: how long in-flight requests get to finish.",
		set: func(c *Config, v string) error { return duration(v, &c.ShutdownTimeout) }},
	{name: "WEBSOCKET_PING_INTERVAL", def: "20s", cmds: backend, help: "Heartbeat interval on /api/v1/events.",
		set: func(c *Config, v string) error { return duration(v, &c.WebSocketPing) }},
	{name: "EVENT_STREAMS_PER_USER", def: "32", cmds: backend, help: "Event streams (/api/v1/events WebSockets) one user may have open on one backend at once (a tab with a live board is one); more are refused with 429.",
		set: func(c *Config, v string) (err error) { c.EventStreamsPerUser, err = positiveInt(v); return err }},
	{name: "EVENT_STREAMS", def: "5000", cmds: backend, help: "Event streams one backend keeps open at once (each about 75 KB); more are refused with 503 and go to another replica.",
		set: func(c *Config, v string) (err error) { c.EventStreams, err = positiveInt(v); return err }},
	{name: "EVENT_REPLAY_BUFFER", def: "1024", cmds: backend, help: "Recent events kept per instance for reconnecting WebSocket clients.",
		set: func(c *Config, v string) error { n, err := positiveInt(v); c.EventReplayBuffer = n; return err }},

	{name: "JWT_PRIVATE_KEYS", secret: true, cmds: backend, required: req(CmdAPI),
		help: "PEM Ed25519 private keys (PKCS#8). The first signs; the others only verify, for rotation. dev generates one into DATA_DIR.",
		set:  func(c *Config, v string) error { c.JWTPrivateKeys = v; return nil }},
	{name: "JWT_ISSUER", def: "hospital-erp", cmds: backend, help: "iss claim of access tokens.",
		set: func(c *Config, v string) error { c.JWTIssuer = v; return nil }},
	{name: "JWT_AUDIENCE", def: "hospital-erp-api", cmds: backend, help: "aud claim of access tokens.",
		set: func(c *Config, v string) error { c.JWTAudience = v; return nil }},
	{name: "ACCESS_TOKEN_TTL", def: "5m", cmds: backend, help: "Lifetime of an access token.",
		set: func(c *Config, v string) error { return duration(v, &c.AccessTokenTTL) }},
	{name: "SESSION_IDLE_TIMEOUT", def: "15m", cmds: backend, help: "A session unused this long ends (automatic log-off).",
		set: func(c *Config, v string) error { return duration(v, &c.SessionIdleTimeout) }},
	{name: "SESSION_MAX_LIFETIME", def: "12h", cmds: backend, help: "A session ends this long after login, used or not.",
		set: func(c *Config, v string) error { return duration(v, &c.SessionMaxLifetime) }},

	{name: "REFRESH_REUSE_GRACE", def: "10s", cmds: backend, help: "A refresh token reused within this time of its first use (two tabs or frontend pods refreshing at once) gets new tokens; reused later, it ends the session as stolen. 0 disables the grace.",
		set: func(c *Config, v string) error { return duration(v, &c.RefreshReuseGrace) }},
	{name: "MFA_ENCRYPTION_KEY", secret: true, cmds: backend, required: req(CmdAPI),
		help: "Base64 of 32 random bytes; encrypts users' TOTP secrets at rest. dev generates one into DATA_DIR. Changing it makes every user re-enrol.",
		set: func(c *Config, v string) error {
			if v == "" {
				return nil
			}
			k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
			if err != nil || len(k) != 32 {
				return errors.New("must be base64 of exactly 32 bytes (openssl rand -base64 32)")
			}
			c.MFAKey = k
			return nil
		}},
	{name: "HOSPITAL_TIMEZONE", def: "UTC", cmds: cmds(CmdAPI, CmdWeb, CmdDev, CmdSeed), help: "IANA time zone of the hospital (Europe/London): availability rules, day boundaries of queue tickets and census, calendar days and times shown in the web UI.",
		set: func(c *Config, v string) error {
			loc, err := time.LoadLocation(v)
			if err != nil {
				return errors.New("must be an IANA time zone such as Europe/London")
			}
			c.Location = loc
			return nil
		}},
	{name: "EMERGENCY_ACCESS_TTL", def: "4h", cmds: backend, help: "How long a \"break the glass\" grant to one patient lasts.",
		set: func(c *Config, v string) error { return duration(v, &c.EmergencyAccessTTL) }},
	{name: "AUDIT_SEAL_INTERVAL", def: "1s", cmds: backend, help: "How often committed audit rows are sealed into the hash chain (the unsealed window).",
		set: func(c *Config, v string) error { return duration(v, &c.AuditSealInterval) }},
	{name: "AUDIT_VERIFY_INTERVAL", def: "5m", cmds: backend, help: "How often each replica verifies the recent audit chain: the links of the last 1,000 blocks, the rows sealed since, up to 100,000 older rows (metric audit_chain_verified).",
		set: func(c *Config, v string) error { return duration(v, &c.AuditVerifyInterval) }},

	{name: "API_URL", def: "http://127.0.0.1:3000", cmds: cmds(CmdWeb), help: "Base URL of the backend the web UI calls (http://backend:3000 in Kubernetes).",
		set: func(c *Config, v string) error {
			c.APIURL = strings.TrimRight(v, "/")
			return checkURL(v, "http", "https")
		}},
	{name: "PUBLIC_URL", def: "http://localhost:3000", cmds: server, help: "The URL users open; its origin is the only one allowed for forms and WebSockets.",
		set: func(c *Config, v string) error {
			c.PublicURL = strings.TrimRight(v, "/")
			return checkURL(v, "http", "https")
		}},
	{name: "WEB_SESSION_KEY", secret: true, cmds: webOnly, required: req(CmdWeb),
		help: "Base64 of 32 random bytes; encrypts the web session cookie. dev generates one into DATA_DIR.",
		set: func(c *Config, v string) error {
			if v == "" {
				return nil
			}
			k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
			if err != nil || len(k) != 32 {
				return errors.New("must be base64 of exactly 32 bytes (openssl rand -base64 32)")
			}
			c.WebSessionKey = k
			return nil
		}},
	{name: "COOKIE_SECURE", def: "true", cmds: webOnly, help: "Mark cookies Secure (HTTPS only). dev sets false for http://localhost.",
		set: func(c *Config, v string) error { return boolean(v, &c.CookieSecure) }},

	{name: "DATA_DIR", def: ".data", cmds: cmds(CmdDev), help: "Where dev keeps its PostgreSQL cluster, keys and demo logins.",
		set: func(c *Config, v string) error { c.DataDir = v; return nil }},
	{name: "DEMO_DATA", def: "true", cmds: cmds(CmdDev), help: "Load the demo hospital into an empty database.",
		set: func(c *Config, v string) error { return boolean(v, &c.DemoData) }},
}

func req(c ...string) map[string]bool {
	m := map[string]bool{}
	for _, x := range c {
		m[x] = true
	}
	return m
}

// Load reads the settings of command from getenv. overrides supplies
// defaults that differ for this command (dev uses some laptop-friendly ones).
func Load(command string, getenv func(string) string, overrides map[string]string) (*Config, error) {
	c := &Config{}
	var errs []error
	for _, o := range options {
		if !o.appliesTo(command) {
			continue
		}
		v, err := lookup(o, getenv)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if v == "" {
			if d, ok := overrides[o.name]; ok {
				v = d
			} else {
				v = o.def
			}
		}
		if v == "" && o.required[command] {
			errs = append(errs, fmt.Errorf("%s is required for %q (see --help)", o.name, command))
			continue
		}
		if err := o.set(c, v); err != nil {
			errs = append(errs, fmt.Errorf("%s=%s: %v", o.name, redact(o, v), err))
		}
	}
	if len(c.RedisSentinelAddrs) > 0 && c.RedisMasterName == "" {
		errs = append(errs, errors.New("REDIS_MASTER_NAME is required when REDIS_SENTINEL_ADDRS is set"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

func (o option) appliesTo(command string) bool {
	for _, c := range o.cmds {
		if c == command {
			return true
		}
	}
	return false
}

// lookup returns NAME, or the contents of the file named by NAME_FILE for
// secrets. Setting both is an error, so a stale variable cannot silently win.
func lookup(o option, getenv func(string) string) (string, error) {
	v := getenv(o.name)
	if !o.secret {
		return strings.TrimSpace(v), nil
	}
	path := getenv(o.name + "_FILE")
	if path == "" {
		return v, nil
	}
	if v != "" {
		return "", fmt.Errorf("%s and %s_FILE are both set; set one", o.name, o.name)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s_FILE: %v", o.name, err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

func redact(o option, v string) string {
	if o.secret {
		return "(secret)"
	}
	return v
}

// Usage writes the settings of command as a table: name, default, meaning.
func Usage(w io.Writer, command string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIABLE\tDEFAULT\tMEANING")
	for _, o := range options {
		if !o.appliesTo(command) {
			continue
		}
		name := o.name
		if o.secret {
			name += " (or " + o.name + "_FILE)"
		}
		def := o.def
		if o.required[command] {
			def = "(required)"
		} else if def == "" {
			def = "(unset)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", name, def, o.help)
	}
	tw.Flush()
}

// Names returns every variable name applying to command; docs are checked against it.
func Names(command string) []string {
	var out []string
	for _, o := range options {
		if o.appliesTo(command) {
			out = append(out, o.name)
		}
	}
	return out
}

func checkURL(v string, schemes ...string) error {
	if v == "" {
		return nil
	}
	u, err := url.Parse(v)
	if err != nil {
		return errors.New("not a valid URL")
	}
	for _, s := range schemes {
		if u.Scheme == s {
			return nil
		}
	}
	return fmt.Errorf("scheme must be one of %s", strings.Join(schemes, ", "))
}

func positiveInt(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, errors.New("must be a positive integer")
	}
	return n, nil
}

func duration(v string, dst *time.Duration) error {
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return errors.New("must be a duration such as 250ms, 5s or 15m")
	}
	*dst = d
	return nil
}

func rate(v string, dst *Rate) error {
	r, err := ParseRate(v)
	*dst = r
	return err
}

func boolean(v string, dst *bool) error {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return errors.New("must be true or false")
	}
	*dst = b
	return nil
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func prefixes(v string, dst *[]netip.Prefix) error {
	*dst = nil
	for _, s := range splitList(v) {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return fmt.Errorf("%q is not a CIDR such as 10.0.0.0/8", s)
		}
		*dst = append(*dst, p.Masked())
	}
	return nil
}

// Markdown renders every setting as the configuration reference
// (docs/configuration.md).
func Markdown() string {
	var b strings.Builder
	b.WriteString("# Configuration reference\n\n")
	b.WriteString("Generated from `internal/config/config.go`; a test fails when this file is stale ")
	b.WriteString("(regenerate with `go test ./internal/config -update`). `hospital-erp <command> --help` prints the same table.\n\n")
	b.WriteString("Every setting is an environment variable. Secrets (marked 🔒) can instead be read from a file named by `NAME_FILE`, ")
	b.WriteString("which is how Kubernetes mounts secrets; setting both is an error. An invalid value stops the start with a message naming the variable.\n\n")
	b.WriteString("| variable | default | commands | meaning |\n|---|---|---|---|\n")
	for _, o := range options {
		name := "`" + o.name + "`"
		if o.secret {
			name += " 🔒"
		}
		def := "`" + o.def + "`"
		if o.def == "" {
			def = "—"
		}
		var req []string
		for _, c := range o.cmds {
			if o.required[c] {
				req = append(req, c)
			}
		}
		if len(req) > 0 {
			def += " (required for " + strings.Join(req, ", ") + ")"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", name, def, strings.Join(o.cmds, ", "), strings.ReplaceAll(o.help, "|", "\\|"))
	}
	return b.String()
}
