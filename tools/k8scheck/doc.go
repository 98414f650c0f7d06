// Package k8scheck proves the Kubernetes manifests under k8s/ are valid and
// say what docs/kubernetes.md and the architecture document say. Its tests
// render every overlay with kubectl kustomize, decode every object strictly
// against the Kubernetes API types and every custom resource against its
// CustomResourceDefinition, check the policies (restricted pods, probes,
// resources, budgets, autoscalers, network policies, secrets, images) and
// the architecture's tables cell by cell, then send everything to a real
// kube-apiserver (server-side dry run with Pod Security admission) and roll
// the production overlay out on a simulated cluster of fake nodes.
//
// It is its own module so the application's go.mod stays small. Run it with
// "make k8s-check" from the repository root. The nested modules kubebin,
// kwokbin and crdgen pin the tools the tests build (kube-apiserver,
// kube-controller-manager, kube-scheduler, kwok, controller-gen); built
// binaries and generated schemas are cached under $(go env GOCACHE)/hospital-erp-k8scheck.
package k8scheck
