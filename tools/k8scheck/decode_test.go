package k8scheck

import (
	"strings"
	"sync"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

var (
	crdOnce  sync.Once
	crdFiles []string
	crdList  []*apiextensionsv1.CustomResourceDefinition
	crdErr   error
)

// crds returns the CustomResourceDefinitions of every operator the manifests
// use (downloaded or generated once, then cached).
func crds(t testing.TB) ([]string, []*apiextensionsv1.CustomResourceDefinition) {
	t.Helper()
	fixture(t)
	crdOnce.Do(func() {
		cache, err := CacheDir()
		if err != nil {
			crdErr = err
			return
		}
		if crdFiles, crdErr = CRDFiles(repoRoot, cache); crdErr != nil {
			return
		}
		for _, f := range crdFiles {
			crd, err := LoadCRD(f)
			if err != nil {
				crdErr = err
				return
			}
			crdList = append(crdList, crd)
		}
	})
	if crdErr != nil {
		t.Fatal(crdErr)
	}
	return crdFiles, crdList
}

// TestStrictDecoding decodes every rendered object of a built-in kind with
// client-go's strict deserializer: an unknown or misspelt field, a wrong type
// or a duplicate key fails. Objects of other kinds must be custom resources
// of a known CRD (checked by TestCustomResources).
func TestStrictDecoding(t *testing.T) {
	_, list := crds(t)
	validator, err := NewCRValidator(list)
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range Sources {
		b := bundles[src]
		t.Run(src, func(t *testing.T) {
			if len(b.objects) == 0 {
				t.Fatalf("k8s/%s renders nothing", src)
			}
			for _, o := range b.objects {
				_, _, err := strictDecoder.Decode(o.YAML, nil, nil)
				switch {
				case err == nil:
				case runtime.IsNotRegisteredError(err):
					if !validator.Knows(o.GroupVersionKind()) {
						t.Errorf("%s (k8s/%s): %s is neither a Kubernetes kind nor served by a known CRD", o.ID(), src, o.GroupVersionKind())
					}
				default:
					t.Errorf("%s (k8s/%s): strict decoding: %v", o.ID(), src, err)
				}
			}
		})
	}
}

// TestCustomResources validates every custom resource (ExternalSecret,
// SecretStore, Certificate, ClusterIssuer, ServiceMonitor, PrometheusRule,
// Prometheus, Alertmanager, Application, AppProject) against its operator's CRD schema as the API
// server would: unknown fields, types, enums, required fields, CEL rules.
func TestCustomResources(t *testing.T) {
	_, list := crds(t)
	validator, err := NewCRValidator(list)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, src := range Sources {
		b := bundles[src]
		t.Run(src, func(t *testing.T) {
			for _, o := range b.custom {
				seen[o.GetKind()] = true
				for _, e := range validator.Validate(o.Object, o.GetNamespace() != "" || strings.HasPrefix(src, "overlays/")) {
					t.Errorf("%s (k8s/%s): %v", o.ID(), src, e)
				}
			}
		})
	}
	for _, kind := range []string{"ExternalSecret", "SecretStore", "Certificate", "ClusterIssuer", "ServiceMonitor", "PrometheusRule", "Prometheus", "Alertmanager", "Application", "AppProject"} {
		if !seen[kind] {
			t.Errorf("no %s rendered: the architecture needs one", kind)
		}
	}
}

// TestSchemaValidatorCatchesMistakes shows the custom-resource check is not
// vacuous: a misspelt field, a wrong enum value and a wrong type fail.
func TestSchemaValidatorCatchesMistakes(t *testing.T) {
	_, list := crds(t)
	validator, err := NewCRValidator(list)
	if err != nil {
		t.Fatal(err)
	}
	es := bundles["overlays/production"].customs("ExternalSecret")[0]
	cases := map[string]func(m map[string]any){
		"misspelt field":   func(m map[string]any) { spec(m)["refreshIntervall"] = "1h" },
		"wrong enum":       func(m map[string]any) { spec(m)["target"].(map[string]any)["creationPolicy"] = "Sometimes" },
		"wrong type":       func(m map[string]any) { spec(m)["data"] = "database-app" },
		"missing required": func(m map[string]any) { delete(spec(m)["data"].([]any)[0].(map[string]any), "remoteRef") },
	}
	for name, mutate := range cases {
		m := runtime.DeepCopyJSON(es.Object)
		mutate(m)
		if errs := validator.Validate(m, true); len(errs) == 0 {
			t.Errorf("%s: an ExternalSecret with a %s passed the schema check", name, name)
		}
	}
	if errs := validator.Validate(es.Object, true); len(errs) != 0 {
		t.Errorf("the unmodified ExternalSecret fails: %v", errs)
	}
}

func spec(m map[string]any) map[string]any { return m["spec"].(map[string]any) }
