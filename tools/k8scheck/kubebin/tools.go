//go:build tools

// Package kubebin pins the Kubernetes control-plane commands the manifest
// checks run (kube-apiserver, kube-controller-manager, kube-scheduler), and
// kubectl for machines without it.
package kubebin

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
