package k8scheck

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// ini parses PgBouncer's ini format into section -> key -> value.
func ini(text string) map[string]map[string]string {
	out := map[string]map[string]string{}
	section := ""
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, ";") || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = strings.Trim(line, "[]")
			if out[section] == nil {
				out[section] = map[string]string{}
			}
		case strings.HasPrefix(line, "%include "):
			out["%include"] = map[string]string{strings.TrimSpace(strings.TrimPrefix(line, "%include ")): ""}
		default:
			k, v, _ := strings.Cut(line, "=")
			if out[section] == nil {
				out[section] = map[string]string{}
			}
			out[section][strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return out
}

// TestPgBouncerWiring: transaction pooling, at most 100 server connections
// per pod, the database entry is the environment's RDS endpoint (the same
// host the migration Job uses), and the backend reaches the database only
// through PgBouncer while the migration goes direct.
func TestPgBouncerWiring(t *testing.T) {
	envs(t, func(t *testing.T, b *bundle) {
		d := b.deployment(t, "pgbouncer")
		spec := &d.Spec.Template.Spec
		main := container(spec, "pgbouncer")
		if main == nil || container(spec, "exporter") == nil {
			t.Fatal("Deployment pgbouncer: needs containers pgbouncer and exporter (Prometheus exporter sidecar)")
		}
		conf := ini(b.mountedConfigFile(t, spec, main, "/etc/pgbouncer/pgbouncer.ini"))
		pg := conf["pgbouncer"]
		if pg["pool_mode"] != "transaction" {
			t.Errorf("pgbouncer.ini: pool_mode = %q, the architecture wants transaction pooling", pg["pool_mode"])
		}
		if pg["max_db_connections"] != "100" {
			t.Errorf("pgbouncer.ini: max_db_connections = %q, the architecture wants 100 per pod", pg["max_db_connections"])
		}
		if n := atoi(pg["default_pool_size"]) + atoi(pg["reserve_pool_size"]); n > 100 {
			t.Errorf("pgbouncer.ini: default_pool_size + reserve_pool_size = %d exceeds the 100 connections per pod", n)
		}
		var include string
		for k := range conf["%include"] {
			include = k
		}
		if include == "" {
			t.Fatal("pgbouncer.ini: no %include of the environment's [databases] file")
		}
		dbs := ini(b.mountedConfigFile(t, spec, main, include))["databases"]
		endpoint := b.configMap("database-endpoint")
		if endpoint == nil {
			t.Fatal("no ConfigMap database-endpoint")
		}
		host := endpoint.Data["DATABASE_HOST"]
		if !strings.HasSuffix(host, ".rds.amazonaws.com") {
			t.Errorf("ConfigMap %s: DATABASE_HOST %q is not an RDS endpoint", endpoint.Name, host)
		}
		entry := dbs[endpoint.Data["DATABASE_NAME"]]
		if !strings.Contains(" "+entry+" ", " host="+host+" ") || !strings.Contains(" "+entry+" ", " port="+endpoint.Data["DATABASE_PORT"]+" ") {
			t.Errorf("PgBouncer [databases] %s = %q does not point at DATABASE_HOST %s:%s", endpoint.Data["DATABASE_NAME"], entry, host, endpoint.Data["DATABASE_PORT"])
		}
		if !strings.Contains(b.envValue(b.jobContainer(t, "migrate"), "DATABASE_URL"), "@$(DATABASE_HOST):") {
			t.Errorf("Job migrate: DATABASE_URL must connect to DATABASE_HOST (RDS) directly, not through PgBouncer")
		}
		tmpl := b.externalSecretTemplate(t, "database-app", "database-url")
		if !strings.Contains(tmpl, "@pgbouncer:5432/") {
			t.Errorf("ExternalSecret database-app: database-url %q must go through the pgbouncer Service", tmpl)
		}
		if h := b.hpa("pgbouncer"); h != nil && len(h.Spec.Metrics) > 0 && h.Spec.Metrics[0].ContainerResource != nil &&
			h.Spec.Metrics[0].ContainerResource.Container != main.Name {
			t.Errorf("HPA pgbouncer: measures container %q, not %q", h.Spec.Metrics[0].ContainerResource.Container, main.Name)
		}
	})
}

// TestPgBouncerConfigLoads starts the real PgBouncer (Debian's) with the
// rendered production configuration, paths moved to a temporary directory:
// an unknown or misspelt setting makes it refuse to start.
func TestPgBouncerConfigLoads(t *testing.T) {
	fixture(t)
	bin, err := Tool("pgbouncer", InstallPgbouncer)
	if err != nil {
		t.Fatal(err)
	}
	b := bundles["overlays/production"]
	d := b.deployment(t, "pgbouncer")
	spec := &d.Spec.Template.Spec
	main := container(spec, "pgbouncer")
	// Not t.TempDir(): its parent is private, and PgBouncer runs as postgres.
	dir, err := os.MkdirTemp("", "k8scheck-pgbouncer")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	port := freePort(t)
	conf := b.mountedConfigFile(t, spec, main, "/etc/pgbouncer/pgbouncer.ini")
	var include string
	for k := range ini(conf)["%include"] {
		include = k
	}
	dbs := b.mountedConfigFile(t, spec, main, include)
	conf = strings.ReplaceAll(conf, "/etc/pgbouncer/", dir+"/")
	conf = regexp.MustCompile(`(?m)^listen_port = .*$`).ReplaceAllString(conf, fmt.Sprintf("listen_port = %d", port))
	conf = regexp.MustCompile(`(?m)^listen_addr = .*$`).ReplaceAllString(conf, "listen_addr = 127.0.0.1")
	write := func(rel, content string) {
		p := filepath.Join(dir, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("pgbouncer.ini", conf)
	write(strings.TrimPrefix(include, "/etc/pgbouncer/"), dbs)
	write("secret/userlist.txt", "\"app\" \"not-a-real-password\"\n\"pgbouncer_stats\" \"not-a-real-password\"\n")
	cmd := exec.Command(bin, filepath.Join(dir, "pgbouncer.ini"))
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if os.Getuid() == 0 {
		// PgBouncer refuses to run as root.
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root needs the postgres user to start PgBouncer: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() { cmd.Process.Signal(syscall.SIGTERM); <-done }()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("PgBouncer refused the production configuration (%v):\n%s", err, out.String())
		default:
		}
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("PgBouncer did not listen within 5 s:\n%s", out.String())
}

// TestRedisConfiguration runs the Redis pods' configuration script (from the
// rendered ConfigMap) with a stand-in redis-cli: on a first start redis-0 is
// the master and the others replicate from it; after a failover a restarting
// pod follows the master the Sentinels report. Persistence is an RDB
// snapshot every 5 minutes plus the AOF; everything requires the password.
func TestRedisConfiguration(t *testing.T) {
	envs(t, func(t *testing.T, b *bundle) {
		if len(b.statefulsets) != 1 || b.statefulsets[0].Name != "redis" {
			t.Fatal("want one StatefulSet, redis")
		}
		s := b.statefulsets[0]
		if len(s.Spec.VolumeClaimTemplates) != 1 || s.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests.Storage().IsZero() {
			t.Errorf("StatefulSet redis: needs a persistent volume claim template for /data")
		}
		names := map[string]bool{}
		for _, c := range s.Spec.Template.Spec.Containers {
			names[c.Name] = true
		}
		for _, want := range []string{"redis", "sentinel", "exporter"} {
			if !names[want] {
				t.Errorf("StatefulSet redis: no %s container", want)
			}
		}
		script := b.configMapFile(t, "redis-scripts", "configure.sh")
		for _, tc := range []struct {
			pod, sentinelAnswer, wantMaster string
		}{
			{"redis-0", "", "redis-0"},
			{"redis-2", "", "redis-0"},
			{"redis-0", "redis-1.redis-headless.NS.svc", "redis-1"},
		} {
			redisConf, sentinelConf := runConfigure(t, script, tc.pod, tc.sentinelAnswer)
			self := tc.pod + ".redis-headless.NS.svc"
			master := tc.wantMaster + ".redis-headless.NS.svc"
			want := []string{"save 300 1", "appendonly yes", "requirepass s3cret", "masterauth s3cret", "replica-announce-ip " + self, "maxmemory "}
			if master != self {
				want = append(want, "replicaof "+master+" 6379")
			} else if strings.Contains(redisConf, "replicaof") {
				t.Errorf("%s (sentinels say %q): must start as master, got replicaof", tc.pod, tc.sentinelAnswer)
			}
			for _, w := range want {
				if !strings.Contains(redisConf, w) {
					t.Errorf("%s (sentinels say %q): redis.conf lacks %q:\n%s", tc.pod, tc.sentinelAnswer, w, redisConf)
				}
			}
			for _, w := range []string{"sentinel monitor hospital-erp " + master + " 6379 2", "sentinel auth-pass hospital-erp s3cret", "requirepass s3cret", "sentinel resolve-hostnames yes"} {
				if !strings.Contains(sentinelConf, w) {
					t.Errorf("%s: sentinel.conf lacks %q:\n%s", tc.pod, w, sentinelConf)
				}
			}
		}
		// The master name the backend asks the Sentinels for.
		if got := b.configMap("backend-config").Data["REDIS_MASTER_NAME"]; got != "hospital-erp" {
			t.Errorf("ConfigMap backend-config: REDIS_MASTER_NAME %q differs from the Sentinels' master name hospital-erp", got)
		}
	})
}

// runConfigure runs configure.sh in a sandbox where redis-cli answers
// "get-master-addr-by-name" with answer (or fails to connect when empty).
func runConfigure(t *testing.T, script, pod, answer string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	os.MkdirAll(bin, 0o755)
	cli := "#!/bin/sh\necho 'Could not connect to Redis' >&2\nexit 1\n"
	if answer != "" {
		cli = "#!/bin/sh\nprintf '%s\\n6379\\n' '" + answer + "'\n"
	}
	os.WriteFile(filepath.Join(bin, "redis-cli"), []byte(cli), 0o755)
	os.WriteFile(filepath.Join(dir, "password"), []byte("s3cret"), 0o600)
	os.MkdirAll(filepath.Join(dir, "runtime"), 0o755)
	script = strings.NewReplacer("/etc/redis-secret/", dir+"/", "/etc/redis-runtime/", dir+"/runtime/").Replace(script)
	os.WriteFile(filepath.Join(dir, "configure.sh"), []byte(script), 0o644)
	cmd := exec.Command("sh", filepath.Join(dir, "configure.sh"))
	cmd.Env = []string{"PATH=" + bin + ":/usr/bin:/bin", "POD_NAME=" + pod, "POD_NAMESPACE=NS", "REDIS_MEMORY_LIMIT_MIB=512"}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("configure.sh for %s: %v\n%s", pod, err, out)
	}
	r, _ := os.ReadFile(filepath.Join(dir, "runtime", "redis.conf"))
	s, _ := os.ReadFile(filepath.Join(dir, "runtime", "sentinel.conf"))
	return string(r), string(s)
}

// mountedConfigFile returns the content of a file a container sees at path,
// when it comes from a ConfigMap volume of this bundle.
func (b *bundle) mountedConfigFile(t *testing.T, spec *corev1.PodSpec, c *corev1.Container, path string) string {
	t.Helper()
	for _, m := range c.VolumeMounts {
		var key string
		switch {
		case m.SubPath != "" && m.MountPath == path:
			key = m.SubPath
		case m.SubPath == "" && strings.HasPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/"):
			key = strings.TrimPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/")
		default:
			continue
		}
		for _, v := range spec.Volumes {
			if v.Name == m.Name && v.ConfigMap != nil {
				return b.configMapFile(t, v.ConfigMap.Name, key)
			}
		}
	}
	t.Fatalf("container %s: %s is not a file of a mounted ConfigMap", c.Name, path)
	return ""
}

func (b *bundle) configMapFile(t *testing.T, name, key string) string {
	t.Helper()
	cm := b.configMap(name)
	if cm == nil {
		t.Fatalf("no ConfigMap %s", name)
	}
	v, ok := cm.Data[key]
	if !ok {
		t.Fatalf("ConfigMap %s has no key %s", cm.Name, key)
	}
	return v
}

func (b *bundle) jobContainer(t *testing.T, name string) *corev1.Container {
	t.Helper()
	for _, j := range b.jobs {
		if j.Name == name {
			return &j.Spec.Template.Spec.Containers[0]
		}
	}
	t.Fatalf("no Job %s", name)
	return nil
}

func (b *bundle) envValue(c *corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

func (b *bundle) externalSecretTemplate(t *testing.T, name, key string) string {
	t.Helper()
	for _, es := range b.customs("ExternalSecret") {
		if es.GetName() == name {
			return unstructuredString(es.Object, "spec", "target", "template", "data", key)
		}
	}
	t.Fatalf("no ExternalSecret %s", name)
	return ""
}

func freePort(t *testing.T) int {
	t.Helper()
	ports, err := freePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	return ports[0]
}

// cronJob returns the environment's CronJob name, failing t without one.
func (b *bundle) cronJob(t *testing.T, name string) *batchv1.CronJob {
	t.Helper()
	for _, c := range b.cronjobs {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no CronJob %s", name)
	return nil
}

// checkDirectDatabaseURL: c reaches RDS (DATABASE_HOST) directly, over TLS,
// not through PgBouncer.
func (b *bundle) checkDirectDatabaseURL(t *testing.T, c *corev1.Container) {
	t.Helper()
	url := b.envValue(c, "DATABASE_URL")
	if !strings.Contains(url, "@$(DATABASE_HOST):") || !strings.Contains(url, "sslmode=require") {
		t.Errorf("DATABASE_URL %q: must reach DATABASE_HOST (RDS) directly with sslmode=require", url)
	}
}

// TestBackupCronJob: the scheduled logical backup (docs/reliability.md)
// runs "hospital-erp backup" at least four times a day, never two at once,
// with a deadline; it writes into a directory on a PersistentVolumeClaim of
// the environment and keeps a week of backups; it reads RDS directly (not
// through PgBouncer, whose transaction pooling would split its snapshot),
// over TLS, as its own read-only role's secret.
func TestBackupCronJob(t *testing.T) {
	envs(t, func(t *testing.T, b *bundle) {
		cj := b.cronJob(t, "backup")
		s := cj.Spec
		fields := strings.Fields(s.Schedule)
		if len(fields) != 5 || fields[2] != "*" || fields[3] != "*" || fields[4] != "*" {
			t.Errorf("schedule %q: want a daily pattern (minute hour * * *)", s.Schedule)
		} else if runs := len(strings.Split(fields[1], ",")); fields[1] != "*" && !strings.HasPrefix(fields[1], "*/") && runs < 4 {
			t.Errorf("schedule %q: %d runs a day, want at least 4", s.Schedule, runs)
		} else if n, ok := strings.CutPrefix(fields[1], "*/"); ok && atoi(n) > 6 {
			t.Errorf("schedule %q: every %s hours, want at most 6", s.Schedule, n)
		}
		if s.TimeZone == nil || *s.TimeZone == "" {
			t.Error("timeZone must be set (the controller's zone is not part of the manifest)")
		}
		if s.ConcurrencyPolicy != batchv1.ForbidConcurrent {
			t.Errorf("concurrencyPolicy %q, want Forbid", s.ConcurrencyPolicy)
		}
		if s.StartingDeadlineSeconds == nil {
			t.Error("startingDeadlineSeconds must be set: a missed run is skipped, not piled up")
		}
		js := s.JobTemplate.Spec
		if js.ActiveDeadlineSeconds == nil || js.BackoffLimit == nil {
			t.Error("the Job needs activeDeadlineSeconds and backoffLimit")
		}
		spec := &js.Template.Spec
		if len(spec.Containers) != 1 {
			t.Fatalf("%d containers, want 1", len(spec.Containers))
		}
		c := spec.Containers[0]
		if appCommand(c) != "backup" {
			t.Fatalf("args %v: want hospital-erp backup", c.Args)
		}
		flags := map[string]string{}
		for i := 1; i+1 < len(c.Args); i += 2 {
			flags[c.Args[i]] = c.Args[i+1]
		}
		if atoi(flags["--keep"]) < 7 {
			t.Errorf("--keep %q: keep at least a week", flags["--keep"])
		}
		claim := ""
		for _, m := range c.VolumeMounts {
			if m.MountPath == flags["--out"] {
				for _, v := range spec.Volumes {
					if v.Name == m.Name && v.PersistentVolumeClaim != nil {
						claim = v.PersistentVolumeClaim.ClaimName
					}
				}
			}
		}
		found := false
		for _, o := range b.objects {
			found = found || (o.GetKind() == "PersistentVolumeClaim" && o.GetName() == claim)
		}
		if claim == "" || !found {
			t.Errorf("--out %q is not a mounted PersistentVolumeClaim of the environment (claim %q)", flags["--out"], claim)
		}
		b.checkDirectDatabaseURL(t, &c)
		for _, e := range c.Env {
			if r := e.ValueFrom; r != nil && r.SecretKeyRef != nil && r.SecretKeyRef.Name != "database-backup" {
				t.Errorf("env %s from Secret %s: the backup uses its own role (database-backup)", e.Name, r.SecretKeyRef.Name)
			}
		}
	})
}

// TestAuditVerifyCronJob: the full verification of the audit chain
// (docs/audit.md) runs "hospital-erp audit verify" every day, never two at
// once, with a deadline and at most one retry (a broken chain fails every
// attempt alike); it reads RDS directly over TLS as the read-only backup
// role, never as the application or the migrator.
func TestAuditVerifyCronJob(t *testing.T) {
	envs(t, func(t *testing.T, b *bundle) {
		cj := b.cronJob(t, "audit-verify")
		s := cj.Spec
		fields := strings.Fields(s.Schedule)
		if len(fields) != 5 || fields[2] != "*" || fields[3] != "*" || fields[4] != "*" || strings.ContainsAny(fields[0]+fields[1], "*/,") {
			t.Errorf("schedule %q: want once a day (minute hour * * *)", s.Schedule)
		}
		if s.TimeZone == nil || *s.TimeZone == "" {
			t.Error("timeZone must be set")
		}
		if s.ConcurrencyPolicy != batchv1.ForbidConcurrent || s.StartingDeadlineSeconds == nil {
			t.Error("concurrencyPolicy Forbid and startingDeadlineSeconds are required")
		}
		js := s.JobTemplate.Spec
		if js.ActiveDeadlineSeconds == nil || js.BackoffLimit == nil || *js.BackoffLimit > 1 {
			t.Error("the Job needs activeDeadlineSeconds and a backoffLimit of at most 1")
		}
		spec := &js.Template.Spec
		if len(spec.Containers) != 1 {
			t.Fatalf("%d containers, want 1", len(spec.Containers))
		}
		c := spec.Containers[0]
		if !slices.Equal(c.Args, []string{"audit", "verify"}) {
			t.Fatalf("args %v: want hospital-erp audit verify", c.Args)
		}
		b.checkDirectDatabaseURL(t, &c)
		refs := 0
		for _, e := range c.Env {
			if r := e.ValueFrom; r != nil && r.SecretKeyRef != nil {
				refs++
				if r.SecretKeyRef.Name != "database-backup" {
					t.Errorf("env %s from Secret %s: the verification only reads (database-backup)", e.Name, r.SecretKeyRef.Name)
				}
			}
		}
		if refs != 2 {
			t.Errorf("%d secret references, want the read-only role's username and password", refs)
		}
	})
}
