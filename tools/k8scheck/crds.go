package k8scheck

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

// moduleCRD is a CustomResourceDefinition shipped inside a Go module zip:
// upstream's own controller-gen output, pinned by the module's hash.
type moduleCRD struct {
	Module, Version, Sum, Path string
}

// The operators' schemas the manifests are checked against. Versions are the
// ones docs/kubernetes.md names as cluster prerequisites.
var moduleCRDs = []moduleCRD{
	{"github.com/cert-manager/cert-manager", "v1.21.2", "h1:UWgoYM+KLNtRlqmoWOKjKBOBUPVHeepQ6/ac3ERJW68=", "deploy/crds/cert-manager.io_certificates.yaml"},
	{"github.com/cert-manager/cert-manager", "v1.21.2", "h1:UWgoYM+KLNtRlqmoWOKjKBOBUPVHeepQ6/ac3ERJW68=", "deploy/crds/cert-manager.io_clusterissuers.yaml"},
	{"github.com/external-secrets/external-secrets", "v0.16.2", "h1:iNY+gIgSyL5higXTfnz+hdPCaiB/43UiHLqE7HBpj68=", "config/crds/bases/external-secrets.io_externalsecrets.yaml"},
	{"github.com/external-secrets/external-secrets", "v0.16.2", "h1:iNY+gIgSyL5higXTfnz+hdPCaiB/43UiHLqE7HBpj68=", "config/crds/bases/external-secrets.io_secretstores.yaml"},
	{"github.com/external-secrets/external-secrets", "v0.16.2", "h1:iNY+gIgSyL5higXTfnz+hdPCaiB/43UiHLqE7HBpj68=", "config/crds/bases/external-secrets.io_clustersecretstores.yaml"},
	// Argo CD's module does not build with this Go, but its zip downloads and
	// carries the CRDs Argo CD installs.
	{"github.com/argoproj/argo-cd/v3", "v3.5.7", "h1:Xm1BF+I5OgDKUG3SDK49vn2/Y5AMyaNVko+/JT08gj0=", "manifests/crds/application-crd.yaml"},
	{"github.com/argoproj/argo-cd/v3", "v3.5.7", "h1:Xm1BF+I5OgDKUG3SDK49vn2/Y5AMyaNVko+/JT08gj0=", "manifests/crds/appproject-crd.yaml"},
}

// The Prometheus Operator's root module (which ships its CRD YAML) is refused
// by the module proxy, so its CRDs are generated here with controller-gen
// from the operator's API module, both pinned in tools/k8scheck/crdgen.
var generatedCRDs = []string{
	"monitoring.coreos.com_servicemonitors.yaml",
	"monitoring.coreos.com_prometheusrules.yaml",
	"monitoring.coreos.com_prometheuses.yaml",
	"monitoring.coreos.com_alertmanagers.yaml",
}

// CRDFiles returns the paths of every CustomResourceDefinition the manifests
// need, downloading or generating what is missing from the cache.
func CRDFiles(root, cache string) ([]string, error) {
	var files []string
	for _, c := range moduleCRDs {
		dir, err := ModuleDir(c.Module, c.Version, c.Sum)
		if err != nil {
			return nil, err
		}
		files = append(files, filepath.Join(dir, c.Path))
	}
	gen, err := generateCRDs(root, cache)
	if err != nil {
		return nil, err
	}
	return append(files, gen...), nil
}

func generateCRDs(root, cache string) ([]string, error) {
	mod := filepath.Join(root, "tools", "k8scheck", "crdgen")
	key, err := HashFiles(filepath.Join(mod, "go.mod"), filepath.Join(mod, "go.sum"))
	if err != nil {
		return nil, err
	}
	// The list is part of the key: a new entry must not find an old,
	// complete directory without it.
	dir := filepath.Join(cache, "crds-"+key+"-"+fmt.Sprint(len(generatedCRDs)))
	var files []string
	for _, f := range generatedCRDs {
		files = append(files, filepath.Join(dir, f))
	}
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err == nil {
		return files, nil
	}
	tmp, err := os.MkdirTemp(cache, "crdgen")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.Command("go", "tool", "controller-gen",
		"crd:crdVersions=v1,allowDangerousTypes=true",
		"paths=github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1",
		"output:crd:dir="+tmp)
	cmd.Dir = mod
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("controller-gen (in %s): %v\n%s", mod, err, out)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	for _, f := range generatedCRDs {
		b, err := os.ReadFile(filepath.Join(tmp, f))
		if err != nil {
			return nil, fmt.Errorf("controller-gen did not write %s: %v", f, err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			return nil, err
		}
	}
	return files, os.WriteFile(filepath.Join(dir, ".complete"), nil, 0o644)
}

// LoadCRD reads one CustomResourceDefinition.
func LoadCRD(path string) (*apiextensionsv1.CustomResourceDefinition, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := yaml.UnmarshalStrict(b, crd); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if crd.Kind != "CustomResourceDefinition" {
		return nil, fmt.Errorf("%s: not a CustomResourceDefinition", path)
	}
	return crd, nil
}
