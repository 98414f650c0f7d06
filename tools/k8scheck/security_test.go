package k8scheck

import (
	"net"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// TestRBAC: one ServiceAccount per component, no API token mounted where the
// process never calls the API (none does), Roles read-only and limited by
// resourceNames to objects that exist; the backend may read its Secrets and
// ConfigMaps, the frontend ConfigMaps only; nothing cluster-wide.
func TestRBAC(t *testing.T) {
	envs(t, func(t *testing.T, b *bundle) {
		for _, o := range b.objects {
			if k := o.GetKind(); k == "ClusterRole" || k == "ClusterRoleBinding" {
				t.Errorf("%s: the application needs no cluster-wide permissions", o.ID())
			}
		}
		owner := map[string]string{}
		for _, w := range b.workloads() {
			sa := w.spec.ServiceAccountName
			if sa == "" || sa == "default" {
				t.Errorf("%s: runs as the default ServiceAccount; give it its own", w.id)
			}
			if prev, ok := owner[sa]; ok {
				t.Errorf("%s: shares ServiceAccount %s with %s", w.id, sa, prev)
			}
			owner[sa] = w.id
			if w.spec.AutomountServiceAccountToken == nil || *w.spec.AutomountServiceAccountToken {
				t.Errorf("%s: automountServiceAccountToken must be false (no container calls the Kubernetes API)", w.id)
			}
		}
		for _, sa := range b.serviceaccounts {
			if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
				t.Errorf("ServiceAccount %s: automountServiceAccountToken must be false", sa.Name)
			}
		}
		secrets := b.externalSecretKeys(t)
		cms := map[string]bool{}
		for _, cm := range b.configmaps {
			cms[cm.Name] = true
		}
		resources := map[string]map[string]bool{}
		for _, r := range b.roles {
			resources[r.Name] = map[string]bool{}
			for _, rule := range r.Rules {
				for _, v := range rule.Verbs {
					if v != "get" && v != "list" && v != "watch" {
						t.Errorf("Role %s: verb %q; the roles are read-only", r.Name, v)
					}
				}
				for _, res := range rule.Resources {
					resources[r.Name][res] = true
					if res != "configmaps" && res != "secrets" {
						t.Errorf("Role %s: resource %q beyond secrets and configmaps", r.Name, res)
					}
					if len(rule.ResourceNames) == 0 {
						t.Errorf("Role %s: %s without resourceNames reads every object of the namespace", r.Name, res)
					}
					for _, n := range rule.ResourceNames {
						if res == "secrets" && secrets[n] == nil {
							t.Errorf("Role %s: Secret %q is not written by any ExternalSecret", r.Name, n)
						}
						if res == "configmaps" && !cms[n] {
							t.Errorf("Role %s: ConfigMap %q does not exist (a generated name whose hash kustomize did not rewrite?)", r.Name, n)
						}
					}
				}
			}
		}
		bound := map[string]string{}
		for _, rb := range b.rolebindings {
			if rb.RoleRef.Kind != "Role" || len(rb.Subjects) != 1 || rb.Subjects[0].Kind != "ServiceAccount" {
				t.Errorf("RoleBinding %s: must bind one Role to one ServiceAccount", rb.Name)
				continue
			}
			bound[rb.Subjects[0].Name] = rb.RoleRef.Name
		}
		if r := resources[bound["backend"]]; !r["secrets"] || !r["configmaps"] {
			t.Errorf("ServiceAccount backend: must be bound to a Role reading its Secrets and ConfigMaps, has %v", sortedSet(r))
		}
		if r := resources[bound["frontend"]]; !r["configmaps"] || r["secrets"] {
			t.Errorf("ServiceAccount frontend: must be bound to a Role reading ConfigMaps only, has %v", sortedSet(r))
		}
	})
}

// Endpoints outside the namespace that the policies talk about.
var (
	ingressController = Endpoint{Name: "ingress-nginx controller", Namespace: "ingress-nginx",
		NamespaceLabels: map[string]string{"kubernetes.io/metadata.name": "ingress-nginx"},
		PodLabels:       map[string]string{"app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/component": "controller"}}
	prometheus = Endpoint{Name: "Prometheus", Namespace: "monitoring",
		NamespaceLabels: map[string]string{"kubernetes.io/metadata.name": "monitoring"},
		PodLabels:       map[string]string{"app.kubernetes.io/name": "prometheus"}}
	coreDNS = Endpoint{Name: "CoreDNS", Namespace: "kube-system",
		NamespaceLabels: map[string]string{"kubernetes.io/metadata.name": "kube-system"},
		PodLabels:       map[string]string{"k8s-app": "kube-dns"}}
	strangerPod = Endpoint{Name: "a pod in namespace default", Namespace: "default",
		NamespaceLabels: map[string]string{"kubernetes.io/metadata.name": "default"},
		PodLabels:       map[string]string{"app.kubernetes.io/name": "backend"}}
	internet = Endpoint{Name: "the internet", IP: net.ParseIP("203.0.113.10")}
)

// databaseIP is an address inside each environment's database subnets (the
// RDS instances' private subnets).
var databaseIP = map[string]string{
	"development": "10.10.130.17",
	"staging":     "10.20.130.17",
	"production":  "10.30.130.17",
}

// TestNetworkPolicies evaluates the environment's NetworkPolicies for every
// flow the architecture allows and for the ones it forbids, and checks that
// a default deny exists and every pod has its own policy.
func TestNetworkPolicies(t *testing.T) {
	envs(t, func(t *testing.T, b *bundle) {
		ns := b.namespaces[0]
		np := NetworkPolicies{Namespace: ns.Name, Policies: b.netpols}
		deny := false
		for _, p := range b.netpols {
			if len(p.Spec.PodSelector.MatchLabels) == 0 && len(p.Spec.PodSelector.MatchExpressions) == 0 &&
				hasType(p, networkingv1.PolicyTypeIngress) && hasType(p, networkingv1.PolicyTypeEgress) &&
				len(p.Spec.Ingress) == 0 && len(p.Spec.Egress) == 0 {
				deny = true
			}
		}
		if !deny {
			t.Errorf("%s: no default-deny NetworkPolicy (podSelector {}, Ingress and Egress, no rules)", ns.Name)
		}
		pod := map[string]Endpoint{}
		for _, w := range b.workloads() {
			e := Endpoint{Name: w.id, Namespace: ns.Name, NamespaceLabels: map[string]string{"kubernetes.io/metadata.name": ns.Name}, PodLabels: w.labels}
			pod[w.labels["app.kubernetes.io/name"]] = e
			pols, _ := np.Selecting(e)
			specific := 0
			for _, p := range pols {
				if len(p.Spec.PodSelector.MatchLabels)+len(p.Spec.PodSelector.MatchExpressions) > 0 {
					specific++
				}
			}
			if specific == 0 {
				t.Errorf("%s: no NetworkPolicy of its own selects its pods", w.id)
			}
		}
		solver := Endpoint{Name: "cert-manager HTTP-01 solver", Namespace: ns.Name, NamespaceLabels: map[string]string{"kubernetes.io/metadata.name": ns.Name},
			PodLabels: map[string]string{"acme.cert-manager.io/http01-solver": "true"}}
		db := Endpoint{Name: "RDS", IP: net.ParseIP(databaseIP[b.env])}
		for _, name := range []string{"backend", "frontend", "pgbouncer", "redis", "migrate", "backup", "audit-verify"} {
			if _, ok := pod[name]; !ok {
				t.Fatalf("no workload labelled app.kubernetes.io/name=%s", name)
			}
		}
		tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
		flows := []struct {
			src, dst Endpoint
			port     int32
			proto    corev1.Protocol
			allowed  bool
		}{
			{ingressController, pod["frontend"], 3000, tcp, true},
			{ingressController, pod["backend"], 3000, tcp, true},
			{pod["frontend"], pod["backend"], 3000, tcp, true},
			{pod["backend"], pod["pgbouncer"], 5432, tcp, true},
			{pod["backend"], pod["redis"], 6379, tcp, true},
			{pod["backend"], pod["redis"], 26379, tcp, true},
			{pod["pgbouncer"], db, 5432, tcp, true},
			{pod["migrate"], db, 5432, tcp, true},
			{pod["backup"], db, 5432, tcp, true},
			{pod["audit-verify"], db, 5432, tcp, true},
			{pod["redis"], pod["redis"], 6379, tcp, true},
			{pod["redis"], pod["redis"], 26379, tcp, true},
			{prometheus, pod["backend"], 9464, tcp, true},
			{prometheus, pod["frontend"], 9464, tcp, true},
			{prometheus, pod["pgbouncer"], 9127, tcp, true},
			{prometheus, pod["redis"], 9121, tcp, true},
			{ingressController, solver, 8089, tcp, true},
			// Forbidden: the architecture's "Frontend -> Backend only",
			// "Backend -> Database, Redis only", metrics never public.
			{pod["frontend"], pod["pgbouncer"], 5432, tcp, false},
			{pod["frontend"], pod["redis"], 6379, tcp, false},
			{pod["frontend"], db, 5432, tcp, false},
			{pod["frontend"], internet, 443, tcp, false},
			{pod["backend"], db, 5432, tcp, false},
			{pod["backend"], internet, 443, tcp, false},
			{pod["backend"], pod["frontend"], 3000, tcp, false},
			{pod["pgbouncer"], internet, 443, tcp, false},
			{pod["pgbouncer"], pod["redis"], 6379, tcp, false},
			{pod["redis"], pod["backend"], 3000, tcp, false},
			{pod["redis"], internet, 443, tcp, false},
			{pod["migrate"], pod["pgbouncer"], 5432, tcp, false},
			{pod["migrate"], internet, 443, tcp, false},
			// The backup reads RDS and nothing else: no PgBouncer (its
			// snapshot needs one session), no Redis, no internet.
			{pod["backup"], pod["pgbouncer"], 5432, tcp, false},
			{pod["backup"], pod["redis"], 6379, tcp, false},
			{pod["backup"], internet, 443, tcp, false},
			{strangerPod, pod["backup"], 3000, tcp, false},
			// So does the audit verification.
			{pod["audit-verify"], pod["pgbouncer"], 5432, tcp, false},
			{pod["audit-verify"], pod["redis"], 6379, tcp, false},
			{pod["audit-verify"], pod["backend"], 3000, tcp, false},
			{pod["audit-verify"], internet, 443, tcp, false},
			{ingressController, pod["pgbouncer"], 5432, tcp, false},
			{ingressController, pod["redis"], 6379, tcp, false},
			{ingressController, pod["backend"], 9464, tcp, false},
			{prometheus, pod["backend"], 3000, tcp, false},
			{strangerPod, pod["backend"], 3000, tcp, false},
			{strangerPod, pod["redis"], 6379, tcp, false},
		}
		for _, name := range []string{"backend", "frontend", "pgbouncer", "redis", "migrate", "backup", "audit-verify"} {
			flows = append(flows, struct {
				src, dst Endpoint
				port     int32
				proto    corev1.Protocol
				allowed  bool
			}{pod[name], coreDNS, 53, udp, true})
		}
		for _, f := range flows {
			ok, why, err := np.Allowed(f.src, f.dst, f.port, f.proto)
			if err != nil {
				t.Errorf("%s -> %s:%d: %v", f.src.Name, f.dst.Name, f.port, err)
				continue
			}
			if ok != f.allowed {
				verb := "must be allowed"
				if !f.allowed {
					verb = "must be denied"
				}
				t.Errorf("%s -> %s port %d/%s %s, but %s", f.src.Name, f.dst.Name, f.port, f.proto, verb, strings.TrimSpace(map[bool]string{true: "the policies allow it", false: why}[ok]))
			}
		}
	})
}
