package k8scheck

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
)

// TestIngress: NGINX class, TLS from the cert-manager Certificate, /api to
// the backend and the rest to the frontend, the WebSocket with long
// time-outs, rate limiting, request buffering and the body limit; metrics
// ports never routed.
func TestIngress(t *testing.T) {
	envs(t, func(t *testing.T, b *bundle) {
		certSecrets := map[string]string{}
		for _, c := range b.customs("Certificate") {
			certSecrets[unstructuredString(c.Object, "spec", "secretName")] = unstructuredString(c.Object, "spec", "issuerRef", "name")
		}
		issuers := map[string]bool{}
		for _, ci := range bundles["cluster"].customs("ClusterIssuer") {
			issuers[ci.GetName()] = true
		}
		for secret, issuer := range certSecrets {
			if !issuers[issuer] {
				t.Errorf("Certificate for %s: ClusterIssuer %q is not defined in k8s/cluster", secret, issuer)
			}
		}
		routes := map[string]string{} // path -> service
		for _, ing := range b.ingresses {
			id := "Ingress " + ing.Name
			if deref(ing.Spec.IngressClassName, "") != "nginx" {
				t.Errorf("%s: ingressClassName must be nginx", id)
			}
			if len(ing.Spec.TLS) == 0 {
				t.Errorf("%s: no TLS", id)
			}
			for _, tls := range ing.Spec.TLS {
				if _, ok := certSecrets[tls.SecretName]; !ok {
					t.Errorf("%s: TLS secret %q is not issued by a cert-manager Certificate", id, tls.SecretName)
				}
			}
			a := ing.Annotations
			if a["nginx.ingress.kubernetes.io/force-ssl-redirect"] != "true" {
				t.Errorf("%s: HTTP must redirect to HTTPS (force-ssl-redirect)", id)
			}
			if a["nginx.ingress.kubernetes.io/limit-rps"] == "" {
				t.Errorf("%s: no rate limit (limit-rps)", id)
			}
			if a["nginx.ingress.kubernetes.io/proxy-body-size"] == "" {
				t.Errorf("%s: no body size limit (proxy-body-size)", id)
			}
			for _, r := range ing.Spec.Rules {
				for _, p := range r.HTTP.Paths {
					svc := p.Backend.Service
					if svc == nil {
						t.Errorf("%s: path %s has no service backend", id, p.Path)
						continue
					}
					if svc.Port.Name != "http" {
						t.Errorf("%s: path %s routes to port %q; only the http ports are public", id, p.Path, svc.Port.Name)
					}
					routes[p.Path] = svc.Name
					if p.Path == "/api/v1/events" {
						if deref(p.PathType, "") != networkingv1.PathTypeExact {
							t.Errorf("%s: /api/v1/events must be an Exact path", id)
						}
						for _, k := range []string{"proxy-read-timeout", "proxy-send-timeout"} {
							if n, _ := strconv.Atoi(a["nginx.ingress.kubernetes.io/"+k]); n < 3600 {
								t.Errorf("%s: WebSocket %s %q must be at least 3600 s", id, k, a["nginx.ingress.kubernetes.io/"+k])
							}
						}
					} else if a["nginx.ingress.kubernetes.io/proxy-request-buffering"] != "on" {
						t.Errorf("%s: request buffering must be on for %s", id, p.Path)
					}
				}
			}
		}
		for path, svc := range map[string]string{"/api": "backend", "/": "frontend", "/api/v1/events": "backend"} {
			if routes[path] != svc {
				t.Errorf("path %s must route to the %s Service, routes to %q", path, svc, routes[path])
			}
		}
	})
}

// TestMonitoring: a ServiceMonitor scrapes every metrics port every 15 s
// (the architecture's interval). The alert rules, Prometheus and the rest of
// k8s/monitoring are monitoring_test.go's.
func TestMonitoring(t *testing.T) {
	envs(t, func(t *testing.T, b *bundle) {
		monitored := map[string]bool{}
		for _, sm := range b.customs("ServiceMonitor") {
			sel, _, _ := unstructuredMap(sm.Object, "spec", "selector", "matchLabels")
			eps, _, _ := unstructuredSlice(sm.Object, "spec", "endpoints")
			for _, e := range eps {
				ep := e.(map[string]any)
				if ep["interval"] != "15s" {
					t.Errorf("%s: interval %v, the architecture scrapes every 15 seconds", sm.ID(), ep["interval"])
				}
				for _, svc := range b.services {
					match := len(sel) > 0
					for k, v := range sel {
						if svc.Labels[k] != v {
							match = false
						}
					}
					for _, p := range svc.Spec.Ports {
						if match && p.Name == ep["port"] {
							monitored[svc.Name+"/"+p.Name] = true
						}
					}
				}
			}
		}
		for _, svc := range b.services {
			for _, p := range svc.Spec.Ports {
				if p.Name == "metrics" && !monitored[svc.Name+"/metrics"] {
					t.Errorf("Service %s: port metrics is scraped by no ServiceMonitor", svc.Name)
				}
			}
		}
	})
}

// TestGitOps: the Argo CD project admits every kind the overlays render (and
// not Secret), every environment has an Application on its overlay and
// namespace, development and staging sync automatically with prune and
// self-heal, production only by hand; and the sync waves run the migration
// after the secrets exist and before the backend rolls.
func TestGitOps(t *testing.T) {
	fixture(t)
	a := bundles["argocd"]
	projects := a.customs("AppProject")
	if len(projects) != 1 {
		t.Fatalf("want one AppProject, got %d", len(projects))
	}
	proj := projects[0]
	allowed := map[string]bool{}
	for _, field := range []string{"clusterResourceWhitelist", "namespaceResourceWhitelist"} {
		wl, _, _ := unstructuredSlice(proj.Object, "spec", field)
		for _, w := range wl {
			m := w.(map[string]any)
			allowed[m["group"].(string)+"/"+m["kind"].(string)] = true
		}
	}
	destinations := map[string]bool{}
	ds, _, _ := unstructuredSlice(proj.Object, "spec", "destinations")
	for _, d := range ds {
		destinations[d.(map[string]any)["namespace"].(string)] = true
	}
	repos, _, _ := unstructuredStrings(proj.Object, "spec", "sourceRepos")
	for _, src := range []string{"overlays/development", "overlays/staging", "overlays/production", "cluster", "monitoring"} {
		for _, o := range bundles[src].objects {
			gk := o.GroupVersionKind().Group + "/" + o.GetKind()
			if !allowed[gk] {
				t.Errorf("%s (k8s/%s): kind %s is not allowed by AppProject %s; Argo CD would refuse to sync it", o.ID(), src, gk, proj.GetName())
			}
		}
	}
	apps := map[string]Object{}
	for _, app := range a.customs("Application") {
		apps[unstructuredString(app.Object, "spec", "source", "path")] = app
		if unstructuredString(app.Object, "spec", "project") != proj.GetName() {
			t.Errorf("%s: not in project %s", app.ID(), proj.GetName())
		}
		repo := unstructuredString(app.Object, "spec", "source", "repoURL")
		if len(repos) == 0 || repo != repos[0] {
			t.Errorf("%s: repoURL %q is not the project's source repository", app.ID(), repo)
		}
		if ns := unstructuredString(app.Object, "spec", "destination", "namespace"); !destinations[ns] {
			t.Errorf("%s: destination namespace %q is not a project destination", app.ID(), ns)
		}
		if _, err := os.Stat(filepath.Join(repoRoot, unstructuredString(app.Object, "spec", "source", "path"), "kustomization.yaml")); err != nil {
			t.Errorf("%s: source path has no kustomization: %v", app.ID(), err)
		}
	}
	for _, env := range Environments {
		app, ok := apps["k8s/overlays/"+env]
		if !ok {
			t.Errorf("no Application deploys k8s/overlays/%s", env)
			continue
		}
		ns := bundles["overlays/"+env].namespaces[0].Name
		if got := unstructuredString(app.Object, "spec", "destination", "namespace"); got != ns {
			t.Errorf("%s: destination namespace %q, the overlay deploys to %q", app.ID(), got, ns)
		}
		ignoresReplicas := false
		ids, _, _ := unstructuredSlice(app.Object, "spec", "ignoreDifferences")
		for _, d := range ids {
			m := d.(map[string]any)
			ptrs, _, _ := unstructuredStrings(m, "jsonPointers")
			if m["kind"] == "Deployment" && len(ptrs) == 1 && ptrs[0] == "/spec/replicas" {
				ignoresReplicas = true
			}
		}
		opts, _, _ := unstructuredStrings(app.Object, "spec", "syncPolicy", "syncOptions")
		if !ignoresReplicas || !strings.Contains(strings.Join(opts, ","), "RespectIgnoreDifferences=true") {
			t.Errorf("%s: must ignore Deployment /spec/replicas (owned by the HPAs) with RespectIgnoreDifferences=true, or every sync resets the autoscaled count", app.ID())
		}
		automated, hasAuto, _ := unstructuredMap(app.Object, "spec", "syncPolicy", "automated")
		if env == "production" {
			if hasAuto {
				t.Errorf("%s: production must sync manually (approval), found syncPolicy.automated", app.ID())
			}
		} else if !hasAuto || automated["prune"] != true || automated["selfHeal"] != true {
			t.Errorf("%s: %s must sync automatically with prune and selfHeal", app.ID(), env)
		}
	}
	envs(t, func(t *testing.T, b *bundle) {
		wave := func(o Object) int {
			n, _ := strconv.Atoi(o.GetAnnotations()["argocd.argoproj.io/sync-wave"])
			return n
		}
		maxOf := func(kind, name string) (int, bool) {
			best, found := -1<<30, false
			for _, o := range b.objects {
				if o.GetKind() == kind && (name == "" || o.GetName() == name) {
					if w := wave(o); w > best {
						best = w
					}
					found = true
				}
			}
			return best, found
		}
		minOf := func(kind, name string) int {
			best := 1 << 30
			for _, o := range b.objects {
				if o.GetKind() == kind && (name == "" || o.GetName() == name) && wave(o) < best {
					best = wave(o)
				}
			}
			return best
		}
		secretsWave, _ := maxOf("ExternalSecret", "")
		storeWave, _ := maxOf("SecretStore", "")
		policyWave, _ := maxOf("NetworkPolicy", "")
		jobWave, ok := maxOf("Job", "migrate")
		if !ok {
			t.Fatal("no migration Job")
		}
		for _, o := range b.objects {
			if o.GetKind() == "Job" && o.GetName() == "migrate" {
				if h := o.GetAnnotations()["argocd.argoproj.io/hook"]; h != "Sync" && h != "PreSync" {
					t.Errorf("%s: must be an Argo CD hook (a Job's template is immutable), got %q", o.ID(), h)
				}
			}
		}
		nsWave, _ := maxOf("Namespace", "")
		for _, o := range b.objects {
			if o.GetKind() != "Namespace" && wave(o) <= nsWave {
				t.Errorf("%s: sync wave %d is not after the Namespace's (%d); Argo CD would create it before its namespace", o.ID(), wave(o), nsWave)
			}
		}
		backendWave := minOf("Deployment", "backend")
		if !(storeWave < secretsWave && secretsWave < jobWave && policyWave < jobWave && jobWave < backendWave) {
			t.Errorf("sync waves must order SecretStore (%d) < ExternalSecrets (%d) < migration Job (%d) < backend (%d), and NetworkPolicies (%d) before any pod",
				storeWave, secretsWave, jobWave, backendWave, policyWave)
		}
		if fw := minOf("Deployment", "frontend"); fw < backendWave {
			t.Errorf("frontend (wave %d) must not roll before the backend (wave %d) whose API it calls", fw, backendWave)
		}
	})
}
