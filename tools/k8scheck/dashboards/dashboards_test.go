package dashboards

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite k8s/monitoring/dashboards from this package")

const dir = "../../../k8s/monitoring/dashboards"

// TestUpToDate: the committed dashboards are this package's output; edit
// the Go code, then "go test ./dashboards -update" (make monitoring-generate).
func TestUpToDate(t *testing.T) {
	all, err := All()
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		for name, b := range all {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) != len(all) {
		t.Errorf("k8s/monitoring/dashboards has %d files, this package builds %d", len(files), len(all))
	}
	for name, want := range all {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("k8s/monitoring/dashboards/%s is not this package's output (%v): run make monitoring-generate", name, err)
		}
	}
}
