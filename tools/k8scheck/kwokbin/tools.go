//go:build tools

// Package kwokbin pins kwok, which simulates the kubelets of fake nodes for
// the simulated-cluster test (its own module: it follows its own Kubernetes
// library versions).
package kwokbin

import _ "sigs.k8s.io/kwok/cmd/kwok"
