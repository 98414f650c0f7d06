package k8scheck

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	psapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
)

// The images of this repository (the one binary) and what each workload runs.
const appImage = "ghcr.io/hospital-erp/hospital-erp"

// TestNoSecretsInGit: secrets come from AWS Secrets Manager through External
// Secrets only. No rendered object and no file under k8s/ may be a Secret.
func TestNoSecretsInGit(t *testing.T) {
	fixture(t)
	for _, src := range Sources {
		for _, o := range bundles[src].objects {
			if o.GetKind() == "Secret" {
				t.Errorf("%s (k8s/%s): a Secret in git; store it in AWS Secrets Manager and add an ExternalSecret", o.ID(), src)
			}
		}
	}
	kindSecret := regexp.MustCompile(`(?m)^\s*kind:\s*["']?Secret["']?\s*$`)
	filepath.WalkDir(filepath.Join(repoRoot, "k8s"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err == nil && kindSecret.Match(b) {
			rel, _ := filepath.Rel(repoRoot, p)
			t.Errorf("%s: declares kind: Secret; secrets belong in AWS Secrets Manager", rel)
		}
		return nil
	})
	// The Argo CD project refuses Secrets even if one slipped in.
	for _, o := range bundles["argocd"].customs("AppProject") {
		wl, _, _ := unstructuredSlice(o.Object, "spec", "namespaceResourceWhitelist")
		for _, w := range wl {
			m := w.(map[string]any)
			if m["kind"] == "Secret" || m["kind"] == "*" {
				t.Errorf("%s: namespaceResourceWhitelist allows %v; Secrets must not be deployable from git", o.ID(), m["kind"])
			}
		}
	}
}

// TestImagesPinned: every image names a registry, a repository and a fixed
// version tag (or a digest); never "latest", never untagged.
func TestImagesPinned(t *testing.T) {
	ref := regexp.MustCompile(`^[a-z0-9.-]+\.[a-z]{2,}(:[0-9]+)?/[a-z0-9._/-]+(:([A-Za-z0-9._-]+))?(@sha256:[0-9a-f]{64})?$`)
	envs(t, func(t *testing.T, b *bundle) {
		for _, w := range b.workloads() {
			for _, c := range allContainers(w.spec) {
				m := ref.FindStringSubmatch(c.Image)
				switch {
				case m == nil:
					t.Errorf("%s container %s: image %q is not registry/repository:tag", w.id, c.Name, c.Image)
				case m[3] == "" && m[4] == "":
					t.Errorf("%s container %s: image %q has neither tag nor digest", w.id, c.Name, c.Image)
				case m[3] == "latest" || !regexp.MustCompile(`[0-9]`).MatchString(m[3]):
					t.Errorf("%s container %s: image %q: tag %q is not a version", w.id, c.Name, c.Image, m[3])
				}
				if c.ImagePullPolicy == corev1.PullAlways {
					t.Errorf("%s container %s: imagePullPolicy Always with a pinned tag", w.id, c.Name)
				}
			}
		}
	})
}

// TestPodSecurityRestricted evaluates every pod template with the Pod
// Security admission library itself (restricted, latest), then checks what
// restricted does not demand but the architecture does: a read-only root
// filesystem for every container.
func TestPodSecurityRestricted(t *testing.T) {
	eval, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	lv := psapi.LevelVersion{Level: psapi.LevelRestricted, Version: psapi.LatestVersion()}
	envs(t, func(t *testing.T, b *bundle) {
		for _, ns := range b.namespaces {
			for _, mode := range []string{"enforce", "audit", "warn"} {
				if got := ns.Labels["pod-security.kubernetes.io/"+mode]; got != "restricted" {
					t.Errorf("Namespace %s: pod-security.kubernetes.io/%s = %q, want restricted", ns.Name, mode, got)
				}
			}
		}
		if len(b.namespaces) != 1 {
			t.Errorf("%s: want exactly one Namespace, got %d", b.source, len(b.namespaces))
		}
		for _, w := range b.workloads() {
			meta := metaOf(w)
			res := policy.AggregateCheckResults(eval.EvaluatePod(lv, &meta, w.spec))
			if !res.Allowed {
				t.Errorf("%s: violates Pod Security restricted: %s", w.id, res.ForbiddenDetail())
			}
			psc := w.spec.SecurityContext
			if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
				t.Errorf("%s: pod securityContext must set runAsNonRoot: true and a numeric non-zero runAsUser (the images have no passwd entry)", w.id)
			}
			if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("%s: pod seccompProfile must be RuntimeDefault", w.id)
			}
			for _, c := range allContainers(w.spec) {
				sc := c.SecurityContext
				switch {
				case sc == nil:
					t.Errorf("%s container %s: no securityContext", w.id, c.Name)
				case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
					t.Errorf("%s container %s: readOnlyRootFilesystem must be true", w.id, c.Name)
				case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
					t.Errorf("%s container %s: allowPrivilegeEscalation must be false", w.id, c.Name)
				case sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || len(sc.Capabilities.Add) != 0:
					t.Errorf("%s container %s: capabilities must drop ALL and add none", w.id, c.Name)
				case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot:
					t.Errorf("%s container %s: runAsNonRoot must be true", w.id, c.Name)
				case sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
					t.Errorf("%s container %s: seccompProfile must be RuntimeDefault", w.id, c.Name)
				case sc.Privileged != nil && *sc.Privileged:
					t.Errorf("%s container %s: privileged", w.id, c.Name)
				}
			}
			if w.spec.HostNetwork || w.spec.HostPID || w.spec.HostIPC {
				t.Errorf("%s: uses host namespaces", w.id)
			}
		}
	})
}

// TestContainersResourcesAndProbes: every container has CPU and memory
// requests and limits; every long-running container has liveness and
// readiness probes; the application's Deployments also a startup probe.
func TestContainersResourcesAndProbes(t *testing.T) {
	envs(t, func(t *testing.T, b *bundle) {
		for _, w := range b.workloads() {
			for _, c := range allContainers(w.spec) {
				for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
					req, okReq := c.Resources.Requests[r]
					lim, okLim := c.Resources.Limits[r]
					if !okReq || !okLim {
						t.Errorf("%s container %s: %s request and limit are both required", w.id, c.Name, r)
					} else if req.Cmp(lim) > 0 {
						t.Errorf("%s container %s: %s request %s above limit %s", w.id, c.Name, r, req.String(), lim.String())
					}
				}
			}
			if w.kind == "Job" || w.kind == "CronJob" {
				continue
			}
			for _, c := range w.spec.Containers {
				if c.LivenessProbe == nil || c.ReadinessProbe == nil {
					t.Errorf("%s container %s: liveness and readiness probes are required", w.id, c.Name)
				}
				if strings.HasPrefix(c.Image, appImage+":") && c.StartupProbe == nil {
					t.Errorf("%s container %s: the application needs a startup probe", w.id, c.Name)
				}
			}
		}
	})
}

// TestDeploymentRollouts: rolling updates never reduce capacity
// (maxUnavailable 0), a stuck rollout is reported (progressDeadlineSeconds),
// pods spread over zones, and every Deployment has a PDB and an HPA.
func TestDeploymentRollouts(t *testing.T) {
	envs(t, func(t *testing.T, b *bundle) {
		if len(b.deployments) == 0 {
			t.Fatal("no Deployments")
		}
		for _, d := range b.deployments {
			id := "Deployment " + d.Name
			s := d.Spec.Strategy
			if s.Type != appsv1.RollingUpdateDeploymentStrategyType || s.RollingUpdate == nil || s.RollingUpdate.MaxUnavailable == nil ||
				(s.RollingUpdate.MaxUnavailable.String() != "0" && s.RollingUpdate.MaxUnavailable.String() != "0%") {
				t.Errorf("%s: strategy must be RollingUpdate with maxUnavailable: 0, got %s", id, describe(s))
			}
			if d.Spec.ProgressDeadlineSeconds == nil || *d.Spec.ProgressDeadlineSeconds > 600 {
				t.Errorf("%s: progressDeadlineSeconds must be set (at most 600) so a failed rollout is reported", id)
			}
			checkSpread(t, id, d.Spec.Template.Labels, d.Spec.Template.Spec.TopologySpreadConstraints)
			// Node failure RTO < 5 min: leave a dead node within 2 minutes
			// (the default toleration is 5).
			for _, taint := range []string{"node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready"} {
				ok := false
				for _, tol := range d.Spec.Template.Spec.Tolerations {
					if tol.Key == taint && tol.Effect == corev1.TaintEffectNoExecute && tol.TolerationSeconds != nil && *tol.TolerationSeconds <= 120 {
						ok = true
					}
				}
				if !ok {
					t.Errorf("%s: needs a NoExecute toleration for %s of at most 120 s (node-failure RTO under 5 minutes)", id, taint)
				}
			}
			if len(b.pdbsFor(d.Spec.Template.Labels)) != 1 {
				t.Errorf("%s: needs exactly one PodDisruptionBudget selecting its pods, has %d", id, len(b.pdbsFor(d.Spec.Template.Labels)))
			}
			if h := b.hpa(d.Name); h == nil || h.Spec.ScaleTargetRef.Kind != "Deployment" {
				t.Errorf("%s: needs a HorizontalPodAutoscaler", id)
			} else if d.Spec.Replicas != nil && *d.Spec.Replicas != deref(h.Spec.MinReplicas, 1) {
				t.Errorf("%s: replicas %d differ from its HPA's minReplicas %d (a sync would fight the autoscaler)", id, *d.Spec.Replicas, deref(h.Spec.MinReplicas, 1))
			}
		}
		for _, s := range b.statefulsets {
			checkSpread(t, "StatefulSet "+s.Name, s.Spec.Template.Labels, s.Spec.Template.Spec.TopologySpreadConstraints)
			if len(b.pdbsFor(s.Spec.Template.Labels)) != 1 {
				t.Errorf("StatefulSet %s: needs exactly one PodDisruptionBudget", s.Name)
			}
		}
	})
}

func checkSpread(t *testing.T, id string, podLabels map[string]string, tsc []corev1.TopologySpreadConstraint) {
	t.Helper()
	zone := false
	seen := map[string]bool{}
	for _, c := range tsc {
		if seen[c.TopologyKey] {
			t.Errorf("%s: two topologySpreadConstraints on %s (a strategic merge patch appended instead of replacing?)", id, c.TopologyKey)
		}
		seen[c.TopologyKey] = true
		if c.LabelSelector == nil || !selectorMatches(c.LabelSelector.MatchLabels, podLabels) {
			t.Errorf("%s: spread constraint on %s does not select the workload's own pods", id, c.TopologyKey)
		}
		if c.TopologyKey == "topology.kubernetes.io/zone" && c.WhenUnsatisfiable == corev1.DoNotSchedule && c.MaxSkew == 1 {
			zone = true
		}
	}
	if !zone {
		t.Errorf("%s: pods must spread across zones (topology.kubernetes.io/zone, maxSkew 1, DoNotSchedule)", id)
	}
}

func selectorMatches(sel, podLabels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if podLabels[k] != v {
			return false
		}
	}
	return true
}

// TestGracefulShutdown: the grace period covers preStop, the application's
// drain delay and its shutdown timeout, read from the ConfigMap the pods use.
func TestGracefulShutdown(t *testing.T) {
	envs(t, func(t *testing.T, b *bundle) {
		for _, name := range []string{"backend", "frontend"} {
			d := b.deployment(t, name)
			c := container(&d.Spec.Template.Spec, name)
			env := b.containerEnv(c)
			drain, err1 := time.ParseDuration(env["DRAIN_DELAY"])
			shutdown, err2 := time.ParseDuration(env["SHUTDOWN_TIMEOUT"])
			if err1 != nil || err2 != nil {
				t.Errorf("Deployment %s: DRAIN_DELAY and SHUTDOWN_TIMEOUT must be set explicitly (%v, %v)", name, err1, err2)
				continue
			}
			var preStop time.Duration
			if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil {
				t.Errorf("Deployment %s: needs a preStop sleep so endpoint removal reaches the ingress before shutdown", name)
			} else {
				preStop = time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
			}
			grace := time.Duration(deref(d.Spec.Template.Spec.TerminationGracePeriodSeconds, 30)) * time.Second
			if need := preStop + drain + shutdown; grace < need+2*time.Second {
				t.Errorf("Deployment %s: terminationGracePeriodSeconds %s < preStop %s + DRAIN_DELAY %s + SHUTDOWN_TIMEOUT %s + 2s margin", name, grace, preStop, drain, shutdown)
			}
		}
	})
}

// containerEnv resolves a container's plain environment: envFrom ConfigMaps
// of this bundle, then env values (secrets are not resolved).
func (b *bundle) containerEnv(c *corev1.Container) map[string]string {
	env := map[string]string{}
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef != nil {
			if cm := b.configMap(ef.ConfigMapRef.Name); cm != nil {
				for k, v := range cm.Data {
					env[ef.Prefix+k] = v
				}
			}
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.ConfigMapKeyRef != nil:
			if cm := b.configMap(e.ValueFrom.ConfigMapKeyRef.Name); cm != nil {
				env[e.Name] = cm.Data[e.ValueFrom.ConfigMapKeyRef.Key]
			}
		default:
			env[e.Name] = "(from " + describe(e.ValueFrom) + ")"
		}
	}
	return env
}

// TestConfigPerEnvironment: log levels debug / info / warn, and each
// environment's public URL is the host its Ingress and certificate serve.
func TestConfigPerEnvironment(t *testing.T) {
	want := map[string]string{"development": "debug", "staging": "info", "production": "warn"}
	envs(t, func(t *testing.T, b *bundle) {
		cm := b.configMap("hospital-erp-config")
		if cm == nil {
			t.Fatal("no ConfigMap hospital-erp-config")
		}
		if got := cm.Data["LOG_LEVEL"]; got != want[b.env] {
			t.Errorf("ConfigMap %s: LOG_LEVEL=%q, the architecture wants %q in %s", cm.Name, got, want[b.env], b.env)
		}
		host := strings.TrimPrefix(cm.Data["PUBLIC_URL"], "https://")
		if !strings.HasPrefix(cm.Data["PUBLIC_URL"], "https://") || strings.ContainsAny(host, "/:") {
			t.Errorf("ConfigMap %s: PUBLIC_URL %q must be https://<host>", cm.Name, cm.Data["PUBLIC_URL"])
		}
		for _, ing := range b.ingresses {
			for _, r := range ing.Spec.Rules {
				if r.Host != host {
					t.Errorf("Ingress %s: host %q differs from PUBLIC_URL host %q", ing.Name, r.Host, host)
				}
			}
			for _, tls := range ing.Spec.TLS {
				for _, h := range tls.Hosts {
					if h != host {
						t.Errorf("Ingress %s: TLS host %q differs from PUBLIC_URL host %q", ing.Name, h, host)
					}
				}
			}
		}
		for _, c := range b.customs("Certificate") {
			names, _, _ := unstructuredStrings(c.Object, "spec", "dnsNames")
			if len(names) != 1 || names[0] != host {
				t.Errorf("%s: dnsNames %v, want [%s]", c.ID(), names, host)
			}
		}
	})
}

func allContainers(spec *corev1.PodSpec) []corev1.Container {
	return append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...)
}

func atoi(s string) int {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return -1
	}
	return n
}
