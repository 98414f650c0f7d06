package k8scheck

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"
)

// The architecture document's tables, read from testdata/architecture.md
// (verbatim excerpts) and compared with the rendered overlays cell by cell.

type mdTable struct {
	header []string
	rows   map[string][]string // first cell -> all cells
}

func architecture(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("testdata/architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// table returns the markdown table following a heading.
func table(t *testing.T, doc, heading string) mdTable {
	t.Helper()
	i := strings.Index(doc, "\n"+heading+"\n")
	if i < 0 {
		t.Fatalf("testdata/architecture.md: no heading %q", heading)
	}
	tb := mdTable{rows: map[string][]string{}}
	for _, line := range strings.Split(doc[i+len(heading)+2:], "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "|") {
			if tb.header != nil {
				break
			}
			continue
		}
		var cells []string
		for _, c := range strings.Split(strings.Trim(line, "|"), "|") {
			cells = append(cells, strings.TrimSpace(c))
		}
		switch {
		case tb.header == nil:
			tb.header = cells
		case strings.HasPrefix(cells[0], "---"):
		default:
			tb.rows[cells[0]] = cells
		}
	}
	if len(tb.rows) == 0 {
		t.Fatalf("testdata/architecture.md: no table under %q", heading)
	}
	return tb
}

// cell returns the value in row component, column col.
func (tb mdTable) cell(t *testing.T, component, col string) string {
	t.Helper()
	row, ok := tb.rows[component]
	if !ok {
		t.Fatalf("table has no row %q", component)
	}
	for i, h := range tb.header {
		if h == col {
			return row[i]
		}
	}
	t.Fatalf("table has no column %q", col)
	return ""
}

// perEnv reads "1 (dev) / 3 (prod)" or "1 (dev) / 2 (staging) / 3
// (production)" or a plain "2" into a value per environment ("" if the cell
// does not say).
func perEnv(cell string) map[string]string {
	out := map[string]string{}
	alias := map[string]string{"dev": "development", "development": "development", "staging": "staging", "prod": "production", "production": "production"}
	re := regexp.MustCompile(`(\S+) \((dev|development|staging|prod|production)\)`)
	ms := re.FindAllStringSubmatch(cell, -1)
	if len(ms) == 0 {
		v := strings.TrimSpace(strings.TrimSuffix(cell, " (fixed)"))
		for _, e := range Environments {
			out[e] = v
		}
		return out
	}
	for _, m := range ms {
		out[alias[m[2]]] = m[1]
	}
	return out
}

// components maps the tables' rows to workloads and their main container.
var components = map[string]struct{ kind, name, container string }{
	"Frontend":  {"Deployment", "frontend", "frontend"},
	"Backend":   {"Deployment", "backend", "backend"},
	"Redis":     {"StatefulSet", "redis", "redis"},
	"PgBouncer": {"Deployment", "pgbouncer", "pgbouncer"},
}

func (b *bundle) component(t *testing.T, name string) workload {
	t.Helper()
	c := components[name]
	for _, w := range b.workloads() {
		if w.kind == c.kind && w.name == c.name {
			return w
		}
	}
	t.Fatalf("no %s %s for %s", c.kind, c.name, name)
	return workload{}
}

// replicasLine reads "- Replicas: 1 (dev) / 2 (staging) / 3 (production)"
// under "**Frontend ...:**" or "**Backend ...:**".
func replicasLine(t *testing.T, doc, component string) map[string]string {
	t.Helper()
	re := regexp.MustCompile(`(?s)\*\*` + component + ` \([^)]*\):\*\*.*?- Replicas: ([^\n]+)`)
	m := re.FindStringSubmatch(doc)
	if m == nil {
		t.Fatalf("testdata/architecture.md: no replicas line for %s", component)
	}
	return perEnv(m[1])
}

func TestArchitectureReplicas(t *testing.T) {
	doc := architecture(t)
	envs(t, func(t *testing.T, b *bundle) {
		for _, comp := range []string{"Frontend", "Backend"} {
			want, _ := strconv.Atoi(replicasLine(t, doc, comp)[b.env])
			if w := b.component(t, comp); int(w.replicas) != want {
				t.Errorf("%s (%s): replicas %d, the architecture says %d", w.id, comp, w.replicas, want)
			}
		}
		// "3 replicas for high availability" (Redis).
		if !strings.Contains(doc, "- 3 replicas for high availability") {
			t.Fatal("testdata/architecture.md: Redis replica line changed")
		}
		if w := b.component(t, "Redis"); w.replicas != 3 {
			t.Errorf("%s: replicas %d, the architecture says 3", w.id, w.replicas)
		}
	})
}

func TestArchitectureAutoscaling(t *testing.T) {
	doc := architecture(t)
	tb := table(t, doc, "### Horizontal Pod Autoscaling")
	envs(t, func(t *testing.T, b *bundle) {
		for comp := range tb.rows {
			w := b.component(t, comp)
			minCell, maxCell := tb.cell(t, comp, "Min Replicas"), tb.cell(t, comp, "Max Replicas")
			if strings.HasSuffix(minCell, "(fixed)") {
				if h := b.hpa(w.name); h != nil {
					t.Errorf("%s: the architecture fixes %s at %s replicas, but HPA %s scales it", w.id, comp, minCell, h.Name)
				}
				if n, _ := strconv.Atoi(perEnv(minCell)[b.env]); int(w.replicas) != n {
					t.Errorf("%s: replicas %d, the architecture fixes %s", w.id, w.replicas, minCell)
				}
				continue
			}
			h := b.hpa(w.name)
			if h == nil {
				t.Errorf("%s: no HorizontalPodAutoscaler (architecture: %s to %s)", w.id, minCell, maxCell)
				continue
			}
			wantMin := perEnv(minCell)[b.env]
			if wantMin == "" {
				// The table names dev and prod only; staging starts at its replicas.
				wantMin = strconv.Itoa(int(w.replicas))
			}
			if got := strconv.Itoa(int(deref(h.Spec.MinReplicas, 1))); got != wantMin {
				t.Errorf("HPA %s: minReplicas %s, the architecture's %q means %s in %s", h.Name, got, minCell, wantMin, b.env)
			}
			if got := strconv.Itoa(int(h.Spec.MaxReplicas)); got != perEnv(maxCell)[b.env] {
				t.Errorf("HPA %s: maxReplicas %s, the architecture says %s", h.Name, got, maxCell)
			}
			for col, res := range map[string]corev1.ResourceName{"Target CPU": corev1.ResourceCPU, "Target Memory": corev1.ResourceMemory} {
				cell := tb.cell(t, comp, col)
				got, ok := utilizationTarget(h, res, components[comp].container)
				switch {
				case cell == "-" && ok:
					t.Errorf("HPA %s: targets %s %d%%, the architecture has none", h.Name, res, got)
				case cell != "-" && (!ok || strconv.Itoa(int(got))+"%" != cell):
					t.Errorf("HPA %s: %s target %d%% (set: %v), the architecture says %s", h.Name, res, got, ok, cell)
				}
			}
		}
		// "Custom metrics (requests per second)" for the frontend and backend.
		for _, name := range []string{"frontend", "backend"} {
			h := b.hpa(name)
			found := false
			for _, m := range h.Spec.Metrics {
				if m.Type == autoscalingv2.PodsMetricSourceType && m.Pods != nil && strings.Contains(m.Pods.Metric.Name, "requests_per_second") && m.Pods.Target.AverageValue != nil {
					found = true
				}
			}
			if !found {
				t.Errorf("HPA %s: no requests-per-second Pods metric (the architecture's custom metric trigger)", h.Name)
			}
		}
	})
}

// utilizationTarget finds a Resource or ContainerResource utilization target.
func utilizationTarget(h *autoscalingv2.HorizontalPodAutoscaler, res corev1.ResourceName, ctr string) (int32, bool) {
	for _, m := range h.Spec.Metrics {
		switch {
		case m.Resource != nil && m.Resource.Name == res && m.Resource.Target.AverageUtilization != nil:
			return *m.Resource.Target.AverageUtilization, true
		case m.ContainerResource != nil && m.ContainerResource.Name == res && m.ContainerResource.Container == ctr && m.ContainerResource.Target.AverageUtilization != nil:
			return *m.ContainerResource.Target.AverageUtilization, true
		}
	}
	return 0, false
}

func TestArchitectureDisruptionBudgets(t *testing.T) {
	tb := table(t, architecture(t), "### Pod Disruption Budgets")
	envs(t, func(t *testing.T, b *bundle) {
		for comp := range tb.rows {
			w := b.component(t, comp)
			pdbs := b.pdbsFor(w.labels)
			if len(pdbs) != 1 {
				t.Errorf("%s: %d PodDisruptionBudgets select it, want 1", w.id, len(pdbs))
				continue
			}
			p := pdbs[0]
			minA, maxU := tb.cell(t, comp, "Min Available"), tb.cell(t, comp, "Max Unavailable")
			gotMin, gotMax := "-", "-"
			if p.Spec.MinAvailable != nil {
				gotMin = p.Spec.MinAvailable.String()
			}
			if p.Spec.MaxUnavailable != nil {
				gotMax = p.Spec.MaxUnavailable.String()
			}
			if minA != "-" && maxU != "-" {
				// A PDB holds one of the two. minAvailable is set; with the
				// fixed replica count it must equal the other column.
				n, _ := strconv.Atoi(maxU)
				if gotMin != minA || gotMax != "-" || int(w.replicas)-p.Spec.MinAvailable.IntValue() != n {
					t.Errorf("PDB %s: minAvailable %s maxUnavailable %s with %d replicas; the architecture's %s / %s means minAvailable %s and replicas - %s = %s",
						p.Name, gotMin, gotMax, w.replicas, minA, maxU, minA, minA, maxU)
				}
				continue
			}
			if gotMin != minA || gotMax != maxU {
				t.Errorf("PDB %s: minAvailable %s, maxUnavailable %s; the architecture says %s, %s", p.Name, gotMin, gotMax, minA, maxU)
			}
		}
	})
}

func TestArchitectureResources(t *testing.T) {
	tb := table(t, architecture(t), "### Resource Limits and Requests")
	cols := []struct {
		col      string
		limit    bool
		resource corev1.ResourceName
	}{
		{"CPU Request", false, corev1.ResourceCPU},
		{"CPU Limit", true, corev1.ResourceCPU},
		{"Memory Request", false, corev1.ResourceMemory},
		{"Memory Limit", true, corev1.ResourceMemory},
	}
	envs(t, func(t *testing.T, b *bundle) {
		lower := 0
		for comp := range tb.rows {
			w := b.component(t, comp)
			c := container(w.spec, components[comp].container)
			for _, col := range cols {
				want := resource.MustParse(tb.cell(t, comp, col.col))
				list := c.Resources.Requests
				if col.limit {
					list = c.Resources.Limits
				}
				got := list[col.resource]
				switch b.env {
				case "development":
					// "Lower resource limits": never above the table.
					if got.Cmp(want) > 0 {
						t.Errorf("%s container %s: %s %s above the architecture's %s", w.id, c.Name, col.col, got.String(), want.String())
					}
					if got.Cmp(want) < 0 {
						lower++
					}
				default:
					// Staging is "production-like", production "full".
					if got.Cmp(want) != 0 {
						t.Errorf("%s container %s: %s %s, the architecture's table says %s", w.id, c.Name, col.col, got.String(), want.String())
					}
				}
			}
		}
		if b.env == "development" && lower == 0 {
			t.Errorf("development: the architecture wants lower resource limits than the table, all are equal")
		}
		// The backend's Go runtime knows its memory limit, whatever the
		// overlay sets it to (GOMEMLIMIT from the downward API).
		memLimit := false
		for _, e := range container(b.component(t, "Backend").spec, "backend").Env {
			memLimit = memLimit || e.Name == "GOMEMLIMIT" && e.ValueFrom != nil && e.ValueFrom.ResourceFieldRef != nil &&
				e.ValueFrom.ResourceFieldRef.Resource == "limits.memory"
		}
		if !memLimit {
			t.Errorf("backend container: no GOMEMLIMIT from its memory limit (resourceFieldRef limits.memory)")
		}
	})
}

func TestArchitectureProbes(t *testing.T) {
	doc := architecture(t)
	m := regexp.MustCompile("(?s)```yaml\n(# Example health checks \\(Backend\\)\n.*?)```").FindStringSubmatch(doc)
	if m == nil {
		t.Fatal("testdata/architecture.md: no health check example")
	}
	var want struct {
		LivenessProbe  corev1.Probe `json:"livenessProbe"`
		ReadinessProbe corev1.Probe `json:"readinessProbe"`
	}
	if err := yaml.UnmarshalStrict([]byte(m[1]), &want); err != nil {
		t.Fatal(err)
	}
	envs(t, func(t *testing.T, b *bundle) {
		// "All pods implement" the example; the frontend serves the same paths.
		for _, name := range []string{"backend", "frontend"} {
			c := container(&b.deployment(t, name).Spec.Template.Spec, name)
			if !reflect.DeepEqual(c.LivenessProbe, &want.LivenessProbe) {
				t.Errorf("Deployment %s: livenessProbe %s differs from the architecture's example %s", name, describe(c.LivenessProbe), describe(want.LivenessProbe))
			}
			if !reflect.DeepEqual(c.ReadinessProbe, &want.ReadinessProbe) {
				t.Errorf("Deployment %s: readinessProbe %s differs from the architecture's example %s", name, describe(c.ReadinessProbe), describe(want.ReadinessProbe))
			}
			if c.StartupProbe == nil {
				t.Errorf("Deployment %s: no startup probe (\"Allows slow-starting containers extra time\")", name)
			} else if sp := c.StartupProbe; sp.PeriodSeconds*sp.FailureThreshold < want.LivenessProbe.InitialDelaySeconds {
				t.Errorf("Deployment %s: the startup probe gives %d s, less than the example's 30 s liveness delay", name, sp.PeriodSeconds*sp.FailureThreshold)
			}
		}
	})
}

func TestArchitectureDataLayer(t *testing.T) {
	doc := architecture(t)
	backups := table(t, doc, "### Backup Strategy")
	if got := backups.cell(t, "Redis", "Frequency"); got != "Every 5 minutes" {
		t.Fatalf("Redis backup frequency in the table is %q; update the check", got)
	}
	for _, line := range []string{"- Transaction-level pooling mode", "- Max connections: 100 per pod", "- Persistence: RDB snapshots + AOF logs", "- Scrapes metrics from all pods every 15 seconds"} {
		if !strings.Contains(doc, line+"\n") {
			t.Fatalf("testdata/architecture.md: line %q changed; update TestPgBouncerWiring, TestRedisConfiguration or TestMonitoring", line)
		}
	}
	envs(t, func(t *testing.T, b *bundle) {
		script := b.configMapFile(t, "redis-scripts", "configure.sh")
		for _, want := range []string{"\nsave 300 1\n", "\nappendonly yes\n"} {
			if !strings.Contains(script, want) {
				t.Errorf("redis configuration: %q missing (RDB every 5 minutes plus AOF)", strings.TrimSpace(want))
			}
		}
	})
}

// TestArchitectureExcerptsVerbatim: when the architecture document is next
// to the repository (../shared/seed), every paragraph of the excerpts must
// still be in it word for word, so the tables above are the document's.
func TestArchitectureExcerptsVerbatim(t *testing.T) {
	fixture(t)
	src := filepath.Join(repoRoot, "..", "shared", "seed", "kubernetes-architecture.md")
	full, err := os.ReadFile(src)
	if err != nil {
		t.Logf("architecture document not found at %s; excerpts not re-checked", src)
		return
	}
	doc := architecture(t)
	doc = doc[strings.Index(doc, "-->")+3:]
	for _, para := range strings.Split(doc, "\n\n") {
		para = strings.TrimSpace(para)
		if para == "" || (strings.HasPrefix(para, "## ") && !strings.Contains(para, "\n")) {
			continue
		}
		if !strings.Contains(string(full), para) {
			t.Errorf("testdata/architecture.md paragraph not in %s:\n%s", src, para)
		}
	}
}
