package k8scheck

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Environments are the overlays under k8s/overlays, in promotion order.
var Environments = []string{"development", "staging", "production"}

// Object is one rendered manifest.
type Object struct {
	// Source is the kustomization it came from, relative to k8s/
	// ("overlays/production").
	Source string
	// YAML is the document exactly as kubectl kustomize printed it.
	YAML []byte
	*unstructured.Unstructured
}

// ID names the object in messages: "Deployment hospital-erp-production/backend".
func (o Object) ID() string {
	if ns := o.GetNamespace(); ns != "" {
		return o.GetKind() + " " + ns + "/" + o.GetName()
	}
	return o.GetKind() + " " + o.GetName()
}

// RepoRoot is the repository root: the nearest parent of the working
// directory holding k8s/ (tests run in tools/k8scheck).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if fi, err := os.Stat(filepath.Join(dir, "k8s", "base", "kustomization.yaml")); err == nil && !fi.IsDir() {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no k8s/base/kustomization.yaml above the working directory")
		}
		dir = parent
	}
}

// Render runs "kubectl kustomize" on k8s/<dir> and splits the output into
// objects, keeping each document's text for strict decoding.
func Render(kubectl, root, dir string) ([]Object, []byte, error) {
	cmd := exec.Command(kubectl, "kustomize", filepath.Join(root, "k8s", dir))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, nil, fmt.Errorf("kubectl kustomize k8s/%s: %v\n%s", dir, err, stderr.String())
	}
	objs, err := Split(dir, out)
	return objs, out, err
}

// Split parses a multi-document YAML stream.
func Split(source string, stream []byte) ([]Object, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(stream)))
	var objs []Object
	for {
		doc, err := r.Read()
		if err == io.EOF {
			return objs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", source, err)
		}
		if len(bytes.TrimSpace(doc)) == 0 || strings.TrimSpace(string(doc)) == "---" {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(doc, &u.Object); err != nil {
			return nil, fmt.Errorf("%s: %w\n%s", source, err, doc)
		}
		if u.Object == nil {
			continue
		}
		objs = append(objs, Object{Source: source, YAML: doc, Unstructured: u})
	}
}
