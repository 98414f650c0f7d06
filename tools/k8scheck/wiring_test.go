package k8scheck

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// settings reads docs/configuration.md (generated from the application's
// internal/config, and checked there) into: variable -> commands it applies
// to, and the set of secret variables (which also accept NAME_FILE).
func settings(t *testing.T) (map[string]map[string]bool, map[string]bool) {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot, "docs", "configuration.md"))
	if err != nil {
		t.Fatalf("the application's settings reference: %v", err)
	}
	defer f.Close()
	row := regexp.MustCompile("^\\| `([A-Z0-9_]+)`( 🔒)? \\| [^|]* \\| ([a-z, ]+) \\|")
	cmds := map[string]map[string]bool{}
	secret := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := row.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		cmds[m[1]] = map[string]bool{}
		for _, c := range strings.Split(m[3], ",") {
			cmds[m[1]][strings.TrimSpace(c)] = true
		}
		if m[2] != "" {
			secret[m[1]] = true
		}
	}
	if len(cmds) < 10 {
		t.Fatalf("docs/configuration.md: found only %d settings; has its table format changed?", len(cmds))
	}
	return cmds, secret
}

// appCommand returns the hospital-erp subcommand a container runs, or "".
func appCommand(c corev1.Container) string {
	if !strings.HasPrefix(c.Image, appImage+":") && !strings.HasPrefix(c.Image, appImage+"@") {
		return ""
	}
	if len(c.Args) == 0 {
		return "?"
	}
	return c.Args[0]
}

// TestApplicationSettings: every variable given to the application is one it
// reads for that subcommand (a misspelt name would silently fall back to its
// default), its required settings are there, and the backend and frontend get
// secrets only as files (NAME_FILE) pointing into a mounted secret.
// goRuntime are the variables the Go runtime reads itself, not the application.
var goRuntime = map[string]bool{"GOMEMLIMIT": true, "GOGC": true, "GOMAXPROCS": true, "GODEBUG": true}

func TestApplicationSettings(t *testing.T) {
	envs(t, func(t *testing.T, b *bundle) {
		known, secret := settings(t)
		required := map[string][]string{
			"api":     {"DATABASE_URL", "JWT_PRIVATE_KEYS", "REDIS_SENTINEL_ADDRS", "REDIS_MASTER_NAME", "REDIS_PASSWORD", "TRUSTED_PROXIES", "PUBLIC_URL", "LOG_LEVEL"},
			"web":     {"API_URL", "WEB_SESSION_KEY", "PUBLIC_URL", "COOKIE_SECURE", "LOG_LEVEL", "TRUSTED_PROXIES"},
			"migrate": {"DATABASE_URL", "LOG_LEVEL"},
			"backup":  {"DATABASE_URL", "LOG_LEVEL"},
			"audit":   {"DATABASE_URL", "LOG_LEVEL"},
		}
		seen := map[string]bool{}
		for _, w := range b.workloads() {
			for _, c := range allContainers(w.spec) {
				cmd := appCommand(c)
				if cmd == "" {
					continue
				}
				if _, ok := required[cmd]; !ok {
					t.Errorf("%s container %s: unexpected hospital-erp command %q", w.id, c.Name, cmd)
					continue
				}
				seen[cmd] = true
				env := b.containerEnv(&c)
				// Variables only used to build others with $(NAME).
				helpers := map[string]bool{}
				for _, e := range c.Env {
					for _, ref := range regexp.MustCompile(`\$\(([A-Z0-9_]+)\)`).FindAllStringSubmatch(e.Value, -1) {
						helpers[ref[1]] = true
					}
				}
				for _, name := range sortedKeys(env) {
					base := name
					if n, ok := strings.CutSuffix(name, "_FILE"); ok && secret[n] {
						base = n
					}
					if known[base][cmd] || helpers[name] || goRuntime[name] {
						continue
					}
					t.Errorf("%s container %s: %s is not a setting of \"hospital-erp %s\" (docs/configuration.md)", w.id, c.Name, name, cmd)
				}
				for _, r := range required[cmd] {
					if _, ok := env[r]; !ok {
						if _, ok := env[r+"_FILE"]; !ok {
							t.Errorf("%s container %s: required setting %s (or %s_FILE) missing", w.id, c.Name, r, r)
						}
					}
				}
				if cmd == "migrate" || cmd == "backup" || cmd == "audit" {
					// Direct connections whose URL is composed from the
					// secret's username and password ($(DB_PASSWORD)).
					continue
				}
				for _, e := range c.Env {
					if secret[e.Name] {
						t.Errorf("%s container %s: secret %s as an environment value; mount it and set %s_FILE", w.id, c.Name, e.Name, e.Name)
					}
					if n, ok := strings.CutSuffix(e.Name, "_FILE"); ok && secret[n] {
						if !mountedSecretFile(w.spec, &c, e.Value) {
							t.Errorf("%s container %s: %s=%s is not a file of a mounted secret", w.id, c.Name, e.Name, e.Value)
						}
					}
				}
			}
		}
		for cmd := range required {
			if !seen[cmd] {
				t.Errorf("no workload runs hospital-erp %s", cmd)
			}
		}
	})
}

// mountedSecretFile reports whether path is an item of a secret (or
// projected secret) volume mounted into c.
func mountedSecretFile(spec *corev1.PodSpec, c *corev1.Container, path string) bool {
	for _, m := range c.VolumeMounts {
		rel, ok := strings.CutPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/")
		if !ok {
			continue
		}
		for _, v := range spec.Volumes {
			if v.Name != m.Name {
				continue
			}
			var items []corev1.KeyToPath
			if v.Secret != nil {
				items = v.Secret.Items
			}
			if v.Projected != nil {
				for _, s := range v.Projected.Sources {
					if s.Secret != nil {
						items = append(items, s.Secret.Items...)
					}
				}
			}
			for _, it := range items {
				if it.Path == rel {
					return true
				}
			}
		}
	}
	return false
}

// TestReferences: every ConfigMap, Secret, key and ServiceAccount a pod
// names exists in the rendered environment; Secrets are those written by an
// ExternalSecret (with that key) or by cert-manager.
func TestReferences(t *testing.T) {
	envs(t, func(t *testing.T, b *bundle) {
		secretKeys := b.externalSecretKeys(t)
		for _, c := range b.customs("Certificate") {
			secretKeys[unstructuredString(c.Object, "spec", "secretName")] = map[string]bool{"tls.crt": true, "tls.key": true, "ca.crt": true}
		}
		cmKeys := map[string]map[string]bool{}
		for _, cm := range b.configmaps {
			cmKeys[cm.Name] = map[string]bool{}
			for k := range cm.Data {
				cmKeys[cm.Name][k] = true
			}
		}
		sas := map[string]bool{}
		for _, sa := range b.serviceaccounts {
			sas[sa.Name] = true
		}
		check := func(id, kind, name, key string, keys map[string]map[string]bool) {
			k, ok := keys[name]
			switch {
			case !ok:
				t.Errorf("%s: %s %q does not exist in the %s environment", id, kind, name, b.env)
			case key != "" && !k[key]:
				t.Errorf("%s: %s %q has no key %q (has %v)", id, kind, name, key, sortedKeys(k))
			}
		}
		for _, w := range b.workloads() {
			if !sas[w.spec.ServiceAccountName] {
				t.Errorf("%s: ServiceAccount %q does not exist", w.id, w.spec.ServiceAccountName)
			}
			for _, v := range w.spec.Volumes {
				if v.Secret != nil {
					for _, it := range v.Secret.Items {
						check(w.id, "Secret", v.Secret.SecretName, it.Key, secretKeys)
					}
				}
				if v.ConfigMap != nil {
					check(w.id, "ConfigMap", v.ConfigMap.Name, "", cmKeys)
				}
				if v.Projected != nil {
					for _, s := range v.Projected.Sources {
						if s.Secret != nil {
							for _, it := range s.Secret.Items {
								check(w.id, "Secret", s.Secret.Name, it.Key, secretKeys)
							}
						}
					}
				}
			}
			for _, c := range allContainers(w.spec) {
				for _, ef := range c.EnvFrom {
					if ef.ConfigMapRef != nil {
						check(w.id, "ConfigMap", ef.ConfigMapRef.Name, "", cmKeys)
					}
					if ef.SecretRef != nil {
						check(w.id, "Secret", ef.SecretRef.Name, "", secretKeys)
					}
				}
				for _, e := range c.Env {
					if e.ValueFrom == nil {
						continue
					}
					if r := e.ValueFrom.SecretKeyRef; r != nil {
						check(w.id, "Secret", r.Name, r.Key, secretKeys)
					}
					if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
						check(w.id, "ConfigMap", r.Name, r.Key, cmKeys)
					}
				}
			}
		}
	})
}

// externalSecretKeys maps each Secret an ExternalSecret writes to its keys.
func (b *bundle) externalSecretKeys(t *testing.T) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	stores := map[string]bool{}
	for _, s := range b.customs("SecretStore") {
		stores[s.GetName()] = true
	}
	for _, es := range b.customs("ExternalSecret") {
		target := unstructuredString(es.Object, "spec", "target", "name")
		if target == "" {
			target = es.GetName()
		}
		keys := map[string]bool{}
		tmpl, hasTemplate, _ := unstructuredMap(es.Object, "spec", "target", "template", "data")
		if hasTemplate {
			for k := range tmpl {
				keys[k] = true
			}
		} else {
			data, _, _ := unstructuredSlice(es.Object, "spec", "data")
			for _, d := range data {
				keys[d.(map[string]any)["secretKey"].(string)] = true
			}
		}
		out[target] = keys
		if ri := unstructuredString(es.Object, "spec", "refreshInterval"); ri == "" || ri == "0" || ri == "0s" {
			t.Errorf("%s: refreshInterval must be set so rotations in AWS reach the cluster", es.ID())
		}
		if ref := unstructuredString(es.Object, "spec", "secretStoreRef", "name"); !stores[ref] || unstructuredString(es.Object, "spec", "secretStoreRef", "kind") != "SecretStore" {
			t.Errorf("%s: secretStoreRef must name this namespace's SecretStore, got %q", es.ID(), ref)
		}
	}
	return out
}

func sortedSet(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
