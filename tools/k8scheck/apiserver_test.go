package k8scheck

import (
	"bytes"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	cpOnce sync.Once
	cp     *ControlPlane
	cpErr  error
)

// controlPlane builds (first run: several minutes; then cached) and starts
// etcd and kube-apiserver once for the test binary, installs the operators'
// CRDs and creates the namespaces. TestMain stops it.
func controlPlane(t *testing.T) *ControlPlane {
	t.Helper()
	files, _ := crds(t)
	cpOnce.Do(func() {
		cache, err := CacheDir()
		if err != nil {
			cpErr = err
			return
		}
		start := time.Now()
		bins, err := BuildControlPlane(repoRoot, cache, true)
		if err != nil {
			cpErr = err
			return
		}
		t.Logf("control plane binaries ready in %s", time.Since(start).Round(time.Millisecond))
		dir, err := os.MkdirTemp("", "k8scheck-cluster")
		if err != nil {
			cpErr = err
			return
		}
		start = time.Now()
		if cp, cpErr = StartControlPlane(bins, kubectlPath, dir); cpErr != nil {
			os.RemoveAll(dir)
			return
		}
		cleanups = append(cleanups, cp.Stop)
		t.Logf("etcd and kube-apiserver %s ready in %s", KubeVersion, time.Since(start).Round(time.Millisecond))
		// CRDs are large: server-side apply (no last-applied annotation).
		args := []string{"apply", "--server-side", "--field-manager=k8scheck"}
		for _, f := range files {
			args = append(args, "-f", f)
		}
		if _, cpErr = cp.Run(nil, args...); cpErr != nil {
			return
		}
		if _, cpErr = cp.Run(nil, "wait", "--for=condition=Established", "crd", "--all", "--timeout=60s"); cpErr != nil {
			return
		}
		// The environments' namespaces (with their Pod Security labels) must
		// exist for a dry run of the objects inside them; Argo CD's,
		// cert-manager's and kube-prometheus-stack's stand in for the
		// installed operators.
		var nss bytes.Buffer
		for _, env := range Environments {
			for _, o := range bundles["overlays/"+env].objects {
				if o.GetKind() == "Namespace" {
					nss.WriteString("---\n")
					nss.Write(o.YAML)
				}
			}
		}
		for _, ns := range []string{"argocd", "cert-manager", "monitoring"} {
			nss.WriteString("---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: " + ns + "\n")
		}
		_, cpErr = cp.Run(nss.Bytes(), "apply", "-f", "-")
	})
	if cpErr != nil {
		t.Fatal(cpErr)
	}
	return cp
}

// TestAPIServerDryRun sends every rendered kustomization to a real
// kube-apiserver: "kubectl apply --dry-run=server --warnings-as-errors"
// runs defaulting, strict field validation (built-in kinds and custom
// resources against the installed CRDs), API validation and admission,
// including Pod Security "restricted" enforced by the namespace labels
// (whose violations by a Deployment are only warnings, hence
// --warnings-as-errors).
func TestAPIServerDryRun(t *testing.T) {
	fixture(t)
	cp := controlPlane(t)
	for _, src := range Sources {
		t.Run(src, func(t *testing.T) {
			out, err := cp.Run(bundles[src].raw, "apply", "--dry-run=server", "--warnings-as-errors", "--validate=strict", "-f", "-")
			if err != nil {
				t.Fatalf("k8s/%s refused by kube-apiserver %s:\n%v", src, KubeVersion, err)
			}
			if n := strings.Count(out, "(server dry run)"); n != len(bundles[src].objects) {
				t.Errorf("k8s/%s: the API server accepted %d objects, %d were rendered:\n%s", src, n, len(bundles[src].objects), out)
			}
		})
	}
}

// TestAPIServerRefusesViolations proves the dry run has teeth: a pod template
// that breaks Pod Security restricted, and a misspelt field, are refused.
func TestAPIServerRefusesViolations(t *testing.T) {
	fixture(t)
	cp := controlPlane(t)
	ns := bundles["overlays/production"].namespaces[0].Name
	privileged := `apiVersion: apps/v1
kind: Deployment
metadata:
  name: violation
  namespace: ` + ns + `
spec:
  selector: {matchLabels: {app: violation}}
  template:
    metadata: {labels: {app: violation}}
    spec:
      containers:
        - name: c
          image: registry.example.org/c:1.0.0
`
	if _, err := cp.Run([]byte(privileged), "apply", "--dry-run=server", "--warnings-as-errors", "-f", "-"); err == nil || !strings.Contains(err.Error(), "restricted") {
		t.Errorf("a Deployment without a restricted security context was not refused (err: %v)", err)
	}
	typo := strings.Replace(privileged, "  selector:", "  selectr:", 1)
	if _, err := cp.Run([]byte(typo), "apply", "--dry-run=server", "--validate=strict", "-f", "-"); err == nil || !strings.Contains(err.Error(), "selectr") {
		t.Errorf("a misspelt field was not refused (err: %v)", err)
	}
}
