// Package crdgen pins controller-gen and the Prometheus Operator API types it
// turns into CustomResourceDefinitions for the manifest checks (the proxy
// serves the operator's API module but not the root module that ships the
// generated YAML).
package crdgen

import _ "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
