package k8scheck

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/kubernetes/scheme"
)

// Sources are the kustomizations under k8s/ that CI renders: the three
// environments, the cluster-wide objects, the monitoring and the Argo CD
// bootstrap.
var Sources = []string{"overlays/development", "overlays/staging", "overlays/production", "cluster", "monitoring", "argocd"}

// bundle is one rendered kustomization, decoded strictly.
type bundle struct {
	source  string
	env     string // "" for cluster and argocd
	raw     []byte
	objects []Object
	typed   map[string]runtime.Object // by Object.ID(), built-in kinds only
	custom  []Object                  // custom resources

	namespaces      []*corev1.Namespace
	deployments     []*appsv1.Deployment
	statefulsets    []*appsv1.StatefulSet
	jobs            []*batchv1.Job
	cronjobs        []*batchv1.CronJob
	services        []*corev1.Service
	configmaps      []*corev1.ConfigMap
	serviceaccounts []*corev1.ServiceAccount
	hpas            []*autoscalingv2.HorizontalPodAutoscaler
	pdbs            []*policyv1.PodDisruptionBudget
	netpols         []networkingv1.NetworkPolicy
	roles           []*rbacv1.Role
	rolebindings    []*rbacv1.RoleBinding
	ingresses       []*networkingv1.Ingress
}

var (
	fixtureOnce sync.Once
	fixtureErr  error
	repoRoot    string
	kubectlPath string
	bundles     map[string]*bundle
	cleanups    []func()
)

func TestMain(m *testing.M) {
	code := m.Run()
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	os.Exit(code)
}

// strictDecoder rejects unknown and duplicate fields of built-in kinds.
var strictDecoder = serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()

func fixture(t testing.TB) {
	t.Helper()
	fixtureOnce.Do(func() {
		if repoRoot, fixtureErr = RepoRoot(); fixtureErr != nil {
			return
		}
		var cache string
		if cache, fixtureErr = CacheDir(); fixtureErr != nil {
			return
		}
		if kubectlPath, fixtureErr = BuildKubectl(repoRoot, cache); fixtureErr != nil {
			return
		}
		bundles = map[string]*bundle{}
		for _, src := range Sources {
			objs, raw, err := Render(kubectlPath, repoRoot, src)
			if err != nil {
				fixtureErr = err
				return
			}
			b := &bundle{source: src, raw: raw, objects: objs, typed: map[string]runtime.Object{}}
			if env, ok := strings.CutPrefix(src, "overlays/"); ok {
				b.env = env
			}
			// Strictness is TestStrictDecoding's business; here keep what decodes.
			for _, o := range objs {
				obj, _, err := strictDecoder.Decode(o.YAML, nil, nil)
				if err != nil && !runtime.IsStrictDecodingError(err) {
					if runtime.IsNotRegisteredError(err) {
						b.custom = append(b.custom, o)
					}
					continue
				}
				b.typed[o.ID()] = obj
				b.collect(obj)
			}
			bundles[src] = b
		}
	})
	if fixtureErr != nil {
		t.Fatal(fixtureErr)
	}
}

func (b *bundle) collect(obj runtime.Object) {
	switch x := obj.(type) {
	case *corev1.Namespace:
		b.namespaces = append(b.namespaces, x)
	case *appsv1.Deployment:
		b.deployments = append(b.deployments, x)
	case *appsv1.StatefulSet:
		b.statefulsets = append(b.statefulsets, x)
	case *batchv1.Job:
		b.jobs = append(b.jobs, x)
	case *batchv1.CronJob:
		b.cronjobs = append(b.cronjobs, x)
	case *corev1.Service:
		b.services = append(b.services, x)
	case *corev1.ConfigMap:
		b.configmaps = append(b.configmaps, x)
	case *corev1.ServiceAccount:
		b.serviceaccounts = append(b.serviceaccounts, x)
	case *autoscalingv2.HorizontalPodAutoscaler:
		b.hpas = append(b.hpas, x)
	case *policyv1.PodDisruptionBudget:
		b.pdbs = append(b.pdbs, x)
	case *networkingv1.NetworkPolicy:
		b.netpols = append(b.netpols, *x)
	case *rbacv1.Role:
		b.roles = append(b.roles, x)
	case *rbacv1.RoleBinding:
		b.rolebindings = append(b.rolebindings, x)
	case *networkingv1.Ingress:
		b.ingresses = append(b.ingresses, x)
	}
}

// envs runs f once per environment overlay as a subtest.
func envs(t *testing.T, f func(t *testing.T, b *bundle)) {
	t.Helper()
	fixture(t)
	for _, env := range Environments {
		b := bundles["overlays/"+env]
		t.Run(env, func(t *testing.T) { f(t, b) })
	}
}

// workload is a pod template with the object that owns it.
type workload struct {
	id       string // "Deployment backend"
	kind     string
	name     string
	labels   map[string]string
	spec     *corev1.PodSpec
	replicas int32
}

func (b *bundle) workloads() []workload {
	var ws []workload
	for _, d := range b.deployments {
		ws = append(ws, workload{"Deployment " + d.Name, "Deployment", d.Name, d.Spec.Template.Labels, &d.Spec.Template.Spec, deref(d.Spec.Replicas, 1)})
	}
	for _, s := range b.statefulsets {
		ws = append(ws, workload{"StatefulSet " + s.Name, "StatefulSet", s.Name, s.Spec.Template.Labels, &s.Spec.Template.Spec, deref(s.Spec.Replicas, 1)})
	}
	for _, j := range b.jobs {
		ws = append(ws, workload{"Job " + j.Name, "Job", j.Name, j.Spec.Template.Labels, &j.Spec.Template.Spec, 1})
	}
	for _, j := range b.cronjobs {
		tmpl := &j.Spec.JobTemplate.Spec.Template
		ws = append(ws, workload{"CronJob " + j.Name, "CronJob", j.Name, tmpl.Labels, &tmpl.Spec, 1})
	}
	return ws
}

func (b *bundle) deployment(t *testing.T, name string) *appsv1.Deployment {
	t.Helper()
	for _, d := range b.deployments {
		if d.Name == name {
			return d
		}
	}
	t.Fatalf("%s: no Deployment %s", b.source, name)
	return nil
}

func (b *bundle) configMap(name string) *corev1.ConfigMap {
	for _, c := range b.configmaps {
		if c.Name == name || strings.TrimSuffix(c.Name, c.Name[strings.LastIndex(c.Name, "-"):]) == name {
			return c
		}
	}
	return nil
}

func (b *bundle) hpa(name string) *autoscalingv2.HorizontalPodAutoscaler {
	for _, h := range b.hpas {
		if h.Spec.ScaleTargetRef.Name == name {
			return h
		}
	}
	return nil
}

// pdbsFor returns the disruption budgets selecting pods with these labels.
func (b *bundle) pdbsFor(podLabels map[string]string) []*policyv1.PodDisruptionBudget {
	var out []*policyv1.PodDisruptionBudget
	for _, p := range b.pdbs {
		sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
		if err == nil && !sel.Empty() && sel.Matches(labels.Set(podLabels)) {
			out = append(out, p)
		}
	}
	return out
}

// customs returns the custom resources of a kind.
func (b *bundle) customs(kind string) []Object {
	var out []Object
	for _, o := range b.custom {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

func container(spec *corev1.PodSpec, name string) *corev1.Container {
	for i := range spec.Containers {
		if spec.Containers[i].Name == name {
			return &spec.Containers[i]
		}
	}
	return nil
}

func deref[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func describe(v any) string { return fmt.Sprintf("%+v", v) }
