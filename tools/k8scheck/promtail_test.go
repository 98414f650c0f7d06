package k8scheck

import (
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"text/template"

	"sigs.k8s.io/yaml"
)

// promtailConfig is the part of Promtail's configuration the test reads.
type promtailConfig struct {
	ScrapeConfigs []struct {
		JobName        string `json:"job_name"`
		RelabelConfigs []struct {
			SourceLabels []string `json:"source_labels"`
			TargetLabel  string   `json:"target_label"`
			Action       string   `json:"action"`
			Regex        string   `json:"regex"`
		} `json:"relabel_configs"`
		PipelineStages []map[string]any `json:"pipeline_stages"`
	} `json:"scrape_configs"`
}

// TestPromtailPipeline runs config/promtail.yml's pipeline over the sample
// lines of config/promtail.test.yml and compares the labels. There is no
// Promtail binary here (and Loki's Go module is AGPL), so this is a model of
// the stages the configuration uses (cri, match with a label matcher and one
// line filter, json, template, regex, labels), following Promtail's
// documentation; an unknown stage fails the test rather than being ignored.
// It proves the configuration's field names fit the application's log lines
// and that request and user ids never become labels; not that Promtail
// parses the file (a field Promtail does not know would pass here).
func TestPromtailPipeline(t *testing.T) {
	var cfg promtailConfig
	if err := yaml.Unmarshal(monitoringFile(t, "config/promtail.yml"), &cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.ScrapeConfigs) != 1 {
		t.Fatalf("want one scrape config, got %d", len(cfg.ScrapeConfigs))
	}
	sc := cfg.ScrapeConfigs[0]
	targets := map[string]bool{}
	keep := false
	for _, r := range sc.RelabelConfigs {
		if r.TargetLabel != "" {
			targets[r.TargetLabel] = true
		}
		if r.Action == "keep" && reflect.DeepEqual(r.SourceLabels, []string{"__meta_kubernetes_namespace"}) && r.Regex == "hospital-erp-.+" {
			keep = true
		}
	}
	if !keep {
		t.Error("promtail.yml must keep only the hospital-erp-* namespaces")
	}
	for _, l := range []string{"namespace", "pod", "container", "component", "__path__"} {
		if !targets[l] {
			t.Errorf("promtail.yml: relabelling sets no %s", l)
		}
	}

	var cases []struct {
		Stream map[string]string `json:"stream"`
		Line   string            `json:"line"`
		Labels map[string]string `json:"labels"`
	}
	if err := yaml.UnmarshalStrict(monitoringFile(t, "config/promtail.test.yml"), &cases); err != nil {
		t.Fatal(err)
	}
	for i, c := range cases {
		labels := map[string]string{}
		for k, v := range c.Stream {
			labels[k] = v
		}
		line := c.Line
		if err := runStages(sc.PipelineStages, labels, &line, map[string]any{}); err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		got := map[string]string{}
		for k, v := range labels {
			if k != "namespace" && k != "pod" && k != "container" && k != "stream" {
				got[k] = v
			}
		}
		if !reflect.DeepEqual(got, c.Labels) {
			t.Errorf("case %d (%.60s...): labels %v, want %v", i, c.Line, got, c.Labels)
		}
		for k := range labels {
			if !lokiLabels[k] {
				t.Errorf("case %d: label %s is not one the dashboards know (%v)", i, k, sortedKeys(lokiLabels))
			}
		}
		if strings.Contains(line, "stdout F") {
			t.Errorf("case %d: the cri stage did not strip the runtime's prefix: %s", i, line)
		}
	}
}

// runStages applies Promtail pipeline stages to one entry.
func runStages(stages []map[string]any, labels map[string]string, line *string, extracted map[string]any) error {
	for _, st := range stages {
		if len(st) != 1 {
			return fmt.Errorf("a stage with %d keys: %v", len(st), st)
		}
		for kind, raw := range st {
			spec, _ := raw.(map[string]any)
			switch kind {
			case "cri":
				m := regexp.MustCompile(`^(\S+) (stdout|stderr) ([FP]) (.*)$`).FindStringSubmatch(*line)
				if m == nil {
					return fmt.Errorf("cri: not a CRI line: %s", *line)
				}
				*line = m[4]
				labels["stream"] = m[2] // Promtail's cri stage labels stdout/stderr
			case "match":
				ok, err := matches(spec["selector"].(string), labels, *line)
				if err != nil {
					return err
				}
				if ok {
					var sub []map[string]any
					for _, s := range spec["stages"].([]any) {
						sub = append(sub, s.(map[string]any))
					}
					if err := runStages(sub, labels, line, extracted); err != nil {
						return err
					}
				}
			case "json":
				var doc map[string]any
				if err := json.Unmarshal([]byte(*line), &doc); err != nil {
					continue // Promtail logs and skips lines that are not JSON
				}
				for name, expr := range spec["expressions"].(map[string]any) {
					key, _ := expr.(string)
					if key == "" {
						key = name
					}
					if !regexp.MustCompile(`^[a-z_]+$`).MatchString(key) {
						return fmt.Errorf("json: expression %q is not a top-level field (the model knows no JMESPath)", key)
					}
					if v, ok := doc[key]; ok {
						if f, isNum := v.(float64); isNum {
							v = fmt.Sprint(f) // Promtail extracts numbers as their text
						}
						extracted[name] = v
					}
				}
			case "template":
				src := spec["source"].(string)
				tmpl, err := template.New(src).Funcs(template.FuncMap{"ToLower": strings.ToLower, "ToUpper": strings.ToUpper}).Parse(spec["template"].(string))
				if err != nil {
					return fmt.Errorf("template %s: %v", src, err)
				}
				v, ok := extracted[src]
				if !ok {
					v = ""
				}
				var b strings.Builder
				if err := tmpl.Execute(&b, map[string]any{"Value": v}); err != nil {
					return fmt.Errorf("template %s: %v", src, err)
				}
				// Promtail drops the key when the template gives nothing.
				if b.Len() == 0 {
					delete(extracted, src)
				} else {
					extracted[src] = b.String()
				}
			case "regex":
				v, ok := extracted[spec["source"].(string)].(string)
				if !ok {
					continue
				}
				re := regexp.MustCompile(spec["expression"].(string))
				if m := re.FindStringSubmatch(v); m != nil {
					for i, name := range re.SubexpNames() {
						if name != "" {
							extracted[name] = m[i]
						}
					}
				}
			case "labels":
				for name, src := range spec {
					key, _ := src.(string)
					if key == "" {
						key = name
					}
					if v, ok := extracted[key].(string); ok && v != "" {
						labels[name] = v
					}
				}
			default:
				return fmt.Errorf("stage %q is not modelled: extend the test before using it", kind)
			}
		}
	}
	return nil
}

// matches evaluates a match stage's selector: label matchers and line
// filters (|= and |~).
func matches(selector string, labels map[string]string, line string) (bool, error) {
	m := regexp.MustCompile(`^\{([^}]*)\}(.*)$`).FindStringSubmatch(selector)
	if m == nil {
		return false, fmt.Errorf("selector %q", selector)
	}
	for _, lm := range regexp.MustCompile(`([a-z_]+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"`).FindAllStringSubmatch(m[1], -1) {
		v := labels[lm[1]]
		pat := strings.ReplaceAll(lm[3], `\\`, `\`)
		var ok bool
		switch lm[2] {
		case "=":
			ok = v == pat
		case "!=":
			ok = v != pat
		case "=~":
			ok = regexp.MustCompile("^(?:" + pat + ")$").MatchString(v)
		case "!~":
			ok = !regexp.MustCompile("^(?:" + pat + ")$").MatchString(v)
		}
		if !ok {
			return false, nil
		}
	}
	for _, f := range regexp.MustCompile(`\|(=|~)\s*"((?:[^"\\]|\\.)*)"`).FindAllStringSubmatch(m[2], -1) {
		var s string
		if err := json.Unmarshal([]byte(`"`+f[2]+`"`), &s); err != nil {
			return false, fmt.Errorf("line filter %q: %v", f[2], err)
		}
		switch f[1] {
		case "=":
			if !strings.Contains(line, s) {
				return false, nil
			}
		case "~":
			if !regexp.MustCompile(s).MatchString(line) {
				return false, nil
			}
		}
	}
	return true, nil
}
