package k8scheck

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// The simulated cluster: three zones of two fake nodes each (kwok), a
// no-provisioner "gp3" StorageClass with pre-made volumes for Redis.
var simZones = []string{"eu-west-1a", "eu-west-1b", "eu-west-1c"}

func simNodes() string {
	var b strings.Builder
	for _, z := range simZones {
		for i := 1; i <= 2; i++ {
			name := fmt.Sprintf("node-%s-%d", z[len(z)-1:], i)
			fmt.Fprintf(&b, `---
apiVersion: v1
kind: Node
metadata:
  name: %[1]s
  annotations:
    kwok.x-k8s.io/node: fake
  labels:
    type: kwok
    kubernetes.io/hostname: %[1]s
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    topology.kubernetes.io/zone: %[2]s
    topology.kubernetes.io/region: eu-west-1
status:
  allocatable: {cpu: "8", memory: 32Gi, pods: "110"}
  capacity: {cpu: "8", memory: 32Gi, pods: "110"}
`, name, z)
		}
	}
	b.WriteString(`---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: gp3
provisioner: kubernetes.io/no-provisioner
volumeBindingMode: WaitForFirstConsumer
`)
	for i := 0; i < 3; i++ {
		fmt.Fprintf(&b, `---
apiVersion: v1
kind: PersistentVolume
metadata:
  name: redis-volume-%d
spec:
  capacity: {storage: 10Gi}
  accessModes: [ReadWriteOnce]
  storageClassName: gp3
  persistentVolumeReclaimPolicy: Retain
  hostPath: {path: /var/lib/k8scheck/redis-%d}
`, i, i)
	}
	return b.String()
}

// TestSimulatedCluster applies the production overlay for real to the API
// server plus kube-controller-manager, kube-scheduler and kwok: the
// Deployments and the Redis StatefulSet roll out (Pod Security admission
// checks every real pod), the migration Job completes, each workload's pods
// spread over the three zones, and evicting pods beyond a
// PodDisruptionBudget is refused.
func TestSimulatedCluster(t *testing.T) {
	fixture(t)
	cp := controlPlane(t)
	start := time.Now()
	if err := cp.Simulate(repoRoot); err != nil {
		t.Fatal(err)
	}
	if _, err := cp.Run([]byte(simNodes()), "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	b := bundles["overlays/production"]
	ns := b.namespaces[0].Name
	if out, err := cp.Run(b.raw, "apply", "--server-side", "--field-manager=k8scheck", "-f", "-"); err != nil {
		t.Fatalf("applying the production overlay: %v\n%s", err, out)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", cp.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// Roll-out: every workload at its full replica count, Ready.
	wait := func(what string, done func() (bool, string)) {
		t.Helper()
		var last string
		for ctx.Err() == nil {
			ok, status := done()
			if ok {
				return
			}
			last = status
			time.Sleep(250 * time.Millisecond)
		}
		events, _ := cp.Run(nil, "get", "events", "-n", ns, "--sort-by=.lastTimestamp")
		t.Fatalf("%s did not happen: %s\nevents:\n%s\ncontroller-manager:\n%s\nscheduler:\n%s", what, last, tail(events, 30), cp.Logs("kube-controller-manager", 15), cp.Logs("kube-scheduler", 15))
	}
	for _, d := range b.deployments {
		name, want := d.Name, deref(d.Spec.Replicas, 1)
		wait("Deployment "+name+" rolled out", func() (bool, string) {
			x, err := cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			return x.Status.AvailableReplicas == want && x.Status.UpdatedReplicas == want, describe(x.Status)
		})
	}
	wait("StatefulSet redis ready", func() (bool, string) {
		x, err := cs.AppsV1().StatefulSets(ns).Get(ctx, "redis", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return x.Status.ReadyReplicas == 3, describe(x.Status)
	})
	wait("Job migrate completed", func() (bool, string) {
		x, err := cs.BatchV1().Jobs(ns).Get(ctx, "migrate", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return x.Status.Succeeded == 1, describe(x.Status)
	})
	t.Logf("production overlay rolled out on the simulated cluster in %s", time.Since(start).Round(time.Millisecond))

	// Zone spread, read from where the scheduler put the pods.
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	zoneOf := map[string]string{}
	for _, n := range nodes.Items {
		zoneOf[n.Name] = n.Labels["topology.kubernetes.io/zone"]
	}
	for _, app := range []string{"backend", "frontend", "pgbouncer", "redis"} {
		pods := runningPods(t, ctx, cs, ns, app)
		perZone, perNode := map[string]int{}, map[string]int{}
		for _, p := range pods {
			perZone[zoneOf[p.Spec.NodeName]]++
			perNode[p.Spec.NodeName]++
		}
		lo, hi := len(pods), 0
		for _, z := range simZones {
			lo, hi = min(lo, perZone[z]), max(hi, perZone[z])
		}
		if hi-lo > 1 {
			t.Errorf("%s: pods per zone %v, skew above 1", app, perZone)
		}
		if app != "pgbouncer" && len(perNode) != len(pods) {
			t.Errorf("%s: two pods share a node: %v", app, perNode)
		}
	}

	// Disruption budgets: one eviction is allowed, the next is refused.
	for _, tc := range []struct{ pdb, app string }{{"backend", "backend"}, {"frontend", "frontend"}, {"redis", "redis"}} {
		wait("PDB "+tc.pdb+" allows exactly one disruption", func() (bool, string) {
			p, err := cs.PolicyV1().PodDisruptionBudgets(ns).Get(ctx, tc.pdb, metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			return p.Status.ObservedGeneration == p.Generation && p.Status.CurrentHealthy == 3 && p.Status.DisruptionsAllowed == 1, describe(p.Status)
		})
		pods := runningPods(t, ctx, cs, ns, tc.app)
		evict := func(name string) error {
			return cs.PolicyV1().Evictions(ns).Evict(ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}})
		}
		if err := evict(pods[0].Name); err != nil {
			t.Errorf("PDB %s: the first eviction (%s) was refused: %v", tc.pdb, pods[0].Name, err)
			continue
		}
		err := evict(pods[1].Name)
		if err == nil || !apierrors.IsTooManyRequests(err) || !strings.Contains(err.Error(), "disruption budget") {
			t.Errorf("PDB %s: a second eviction (%s) right after the first must be refused by the budget, got %v", tc.pdb, pods[1].Name, err)
		}
	}
}

func runningPods(t *testing.T, ctx context.Context, cs *kubernetes.Clientset, ns, app string) []corev1.Pod {
	t.Helper()
	list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=" + app})
	if err != nil {
		t.Fatal(err)
	}
	var out []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	if len(out) < 2 {
		t.Fatalf("%s: %d running pods", app, len(out))
	}
	return out
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
