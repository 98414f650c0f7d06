# Kubernetes delivery: the container image and the manifest checks.
# Included from the Makefile; "make test" runs k8s-check. docs/kubernetes.md
# explains both.

GO          ?= go
IMAGE       ?= ghcr.io/hospital-erp/hospital-erp
IMAGE_TAG   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
IMAGE_REVISION ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
# docker or podman, whichever answers (empty when no engine runs).
CONTAINER_ENGINE ?= $(shell for e in docker podman; do command -v $$e >/dev/null 2>&1 && $$e info >/dev/null 2>&1 && { echo $$e; break; }; done)
K8S_DEBS     = etcd-server pgbouncer prometheus

.PHONY: image image-oci k8s-check k8s-deps k8s-render

image: ## build the container image with docker or podman (IMAGE, IMAGE_TAG)
	@if [ -z "$(CONTAINER_ENGINE)" ]; then \
		echo "no container engine (docker or podman) is running here; 'make image-oci' builds the same image without one"; exit 1; fi
	$(CONTAINER_ENGINE) build --build-arg VERSION=$(IMAGE_TAG) --build-arg REVISION=$(IMAGE_REVISION) -t $(IMAGE):$(IMAGE_TAG) .

image-oci: ## build the image without a container engine: bin/oci (OCI layout) and bin/hospital-erp-image.tar, validated by crane
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o bin/hospital-erp ./cmd/hospital-erp
	cd tools/ociimage && SOURCE_DATE_EPOCH=$$(git log -1 --format=%ct 2>/dev/null || echo 0) $(GO) run . \
		-binary ../../bin/hospital-erp -ref $(IMAGE):$(IMAGE_TAG) \
		-version $(IMAGE_TAG) -revision $(IMAGE_REVISION) \
		-layout ../../bin/oci -tarball ../../bin/hospital-erp-image.tar
	cd tools/ociimage && $(GO) tool crane validate --tarball ../../bin/hospital-erp-image.tar

k8s-check: k8s-deps ## render every overlay and check it: schemas, policies, the architecture's tables, a real kube-apiserver, a simulated cluster
	cd tools/k8scheck && $(GO) vet ./... && $(GO) test -count=1 -timeout 30m ./...
	cd tools/ociimage && $(GO) vet ./... && $(GO) test -count=1 ./...

k8s-deps: ## install the Debian packages the manifest checks use (etcd, pgbouncer, promtool) when root
	@missing=""; \
	command -v etcd >/dev/null 2>&1 || missing="$$missing etcd-server"; \
	{ command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ]; } || missing="$$missing pgbouncer"; \
	command -v promtool >/dev/null 2>&1 || missing="$$missing prometheus"; \
	[ -z "$$missing" ] && exit 0; \
	if [ "$$(id -u)" -ne 0 ]; then echo "Missing Debian packages:$$missing"; echo "Install them with: sudo apt-get install -y$$missing"; exit 1; fi; \
	echo "Installing Debian packages:$$missing"; \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null

k8s-render: ## print one environment's manifests: make k8s-render ENV=production (the pinned kubectl is built when none is installed)
	@if command -v kubectl >/dev/null 2>&1; then k=kubectl; else \
		k=$$(go env GOCACHE)/hospital-erp-k8scheck/kubectl-render; \
		(cd tools/k8scheck/kubebin && CGO_ENABLED=0 GOFLAGS=-buildvcs=false $(GO) build -trimpath -o $$k k8s.io/kubernetes/cmd/kubectl); fi; \
		$$k kustomize k8s/overlays/$(or $(ENV),production)
