package k8scheck

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// KubeVersion is the Kubernetes release whose API server, controller
// manager and scheduler the checks build (tools/k8scheck/kubebin/go.mod).
const KubeVersion = "v1.37.2"

// Binaries are the control-plane programs of a test cluster.
type Binaries struct {
	Etcd, APIServer, ControllerManager, Scheduler, Kwok string
}

// BuildControlPlane builds (or finds up to date in the cache) the Kubernetes
// commands from the pinned modules, and finds Debian's etcd. sim adds what
// the simulated cluster needs (controller manager, scheduler, kwok).
func BuildControlPlane(root, cache string, sim bool) (Binaries, error) {
	var b Binaries
	var err error
	if b.Etcd, err = Tool("etcd", InstallEtcd); err != nil {
		return b, err
	}
	bin := filepath.Join(cache, "bin-"+KubeVersion)
	kubebin := filepath.Join(root, "tools", "k8scheck", "kubebin")
	const v = "k8s.io/component-base/version"
	minor := strings.Split(KubeVersion, ".")[1]
	// Without these kubectl cannot parse the server's version.
	ldflags := fmt.Sprintf("-X %s.gitVersion=%s -X %s.gitMajor=1 -X %s.gitMinor=%s -X %s.gitTreeState=clean", v, KubeVersion, v, v, minor, v)
	cmds := []string{"kube-apiserver"}
	if sim {
		cmds = append(cmds, "kube-controller-manager", "kube-scheduler")
	}
	for _, c := range cmds {
		if err := GoBuild(kubebin, "k8s.io/kubernetes/cmd/"+c, filepath.Join(bin, c), ldflags); err != nil {
			return b, err
		}
	}
	b.APIServer = filepath.Join(bin, "kube-apiserver")
	if sim {
		b.ControllerManager = filepath.Join(bin, "kube-controller-manager")
		b.Scheduler = filepath.Join(bin, "kube-scheduler")
		b.Kwok = filepath.Join(bin, "kwok")
		if err := GoBuild(filepath.Join(root, "tools", "k8scheck", "kwokbin"), "sigs.k8s.io/kwok/cmd/kwok", b.Kwok, ""); err != nil {
			return b, err
		}
	}
	return b, nil
}

// BuildKubectl builds the pinned kubectl (same version as the control
// plane, with its kustomize) into the cache, so every machine renders the
// overlays with the same kustomize and none needs kubectl installed.
func BuildKubectl(root, cache string) (string, error) {
	out := filepath.Join(cache, "bin-"+KubeVersion, "kubectl")
	const v = "k8s.io/component-base/version"
	minor := strings.Split(KubeVersion, ".")[1]
	ldflags := fmt.Sprintf("-X %s.gitVersion=%s -X %s.gitMajor=1 -X %s.gitMinor=%s -X %s.gitTreeState=clean", v, KubeVersion, v, v, minor, v)
	return out, GoBuild(filepath.Join(root, "tools", "k8scheck", "kubebin"), "k8s.io/kubernetes/cmd/kubectl", out, ldflags)
}

// ControlPlane is etcd plus a kube-apiserver on loopback ports, and, once
// Simulate has run, a controller manager, a scheduler and kwok.
type ControlPlane struct {
	Dir        string
	Kubeconfig string
	URL        string
	Token      string
	Kubectl    string
	procs      []*proc
	bins       Binaries
	saKey      string
}

type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// StartControlPlane starts etcd and kube-apiserver in dir and waits until
// the API server is ready. Call Stop when done.
func StartControlPlane(bins Binaries, kubectl, dir string) (*ControlPlane, error) {
	cp := &ControlPlane{Dir: dir, bins: bins, Kubectl: kubectl}
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	if err := cp.start("etcd", bins.Etcd,
		"--name=k8scheck",
		"--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=k8scheck="+peerURL,
		"--unsafe-no-fsync",
	); err != nil {
		return nil, err
	}

	tok := make([]byte, 16)
	rand.Read(tok)
	cp.Token = hex.EncodeToString(tok)
	tokens := filepath.Join(dir, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(cp.Token+",admin,admin,system:masters\n"), 0o600); err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	cp.saKey = filepath.Join(dir, "sa.key")
	if err := os.WriteFile(cp.saKey, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, err
	}
	cp.URL = fmt.Sprintf("https://127.0.0.1:%d", ports[2])
	if err := cp.start("kube-apiserver", bins.APIServer,
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", ports[2]),
		"--cert-dir="+filepath.Join(dir, "apiserver-certs"),
		"--token-auth-file="+tokens,
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file="+cp.saKey,
		"--service-account-signing-key-file="+cp.saKey,
		"--service-cluster-ip-range=10.96.0.0/16",
		// Without it privileged pods fail before Pod Security admission runs.
		"--allow-privileged=true",
		"--endpoint-reconciler-type=none",
		"--profiling=false",
	); err != nil {
		cp.Stop()
		return nil, err
	}
	cp.Kubeconfig = filepath.Join(dir, "kubeconfig")
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: k8scheck
  cluster:
    server: %s
    insecure-skip-tls-verify: true
users:
- name: admin
  user:
    token: %s
contexts:
- name: k8scheck
  context:
    cluster: k8scheck
    user: admin
current-context: k8scheck
`, cp.URL, cp.Token)
	if err := os.WriteFile(cp.Kubeconfig, []byte(kc), 0o600); err != nil {
		cp.Stop()
		return nil, err
	}
	if err := cp.waitReady(90 * time.Second); err != nil {
		cp.Stop()
		return nil, err
	}
	return cp, nil
}

// Simulate adds kube-controller-manager, kube-scheduler and kwok (which
// plays the kubelet of every node labelled type=kwok, with the stage files
// shipped in its module: nodes become Ready, pods Running, Job pods
// Succeeded).
func (cp *ControlPlane) Simulate(root string) error {
	if err := cp.start("kube-controller-manager", cp.bins.ControllerManager,
		"--kubeconfig="+cp.Kubeconfig,
		"--leader-elect=false",
		"--secure-port=0",
		"--service-account-private-key-file="+cp.saKey,
		"--use-service-account-credentials=false",
		"--cluster-name=k8scheck",
		"--controllers=*",
		// Fast enough for a test: the autoscaler and the disruption budgets.
		"--horizontal-pod-autoscaler-sync-period=5s",
	); err != nil {
		return err
	}
	if err := cp.start("kube-scheduler", cp.bins.Scheduler,
		"--kubeconfig="+cp.Kubeconfig,
		"--authentication-kubeconfig="+cp.Kubeconfig,
		"--authorization-kubeconfig="+cp.Kubeconfig,
		"--leader-elect=false",
		"--secure-port=0",
	); err != nil {
		return err
	}
	stages, err := kwokStages(root)
	if err != nil {
		return err
	}
	conf := filepath.Join(cp.Dir, "kwok.yaml")
	if err := os.WriteFile(conf, stages, 0o644); err != nil {
		return err
	}
	return cp.start("kwok", cp.bins.Kwok,
		"--kubeconfig="+cp.Kubeconfig,
		"--config="+conf,
		"--manage-all-nodes=false",
		"--manage-nodes-with-label-selector=type=kwok",
		"--node-lease-duration-seconds=40",
		"--cidr=10.244.0.0/16",
		"--node-ip=10.0.0.1",
	)
}

// kwokStages concatenates the stage files kwok ships for fast, healthy
// nodes and pods.
func kwokStages(root string) ([]byte, error) {
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/kwok")
	cmd.Dir = filepath.Join(root, "tools", "k8scheck", "kwokbin")
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list -m sigs.k8s.io/kwok: %v", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "kustomize", "stage")
	var buf bytes.Buffer
	for _, f := range []string{
		"node/fast/node-initialize.yaml",
		"node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
		"pod/fast/pod-ready.yaml",
		"pod/fast/pod-complete.yaml",
		"pod/fast/pod-delete.yaml",
	} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			return nil, err
		}
		buf.WriteString("---\n")
		buf.Write(b)
		buf.WriteString("\n")
	}
	return buf.Bytes(), nil
}

// Run runs kubectl against the cluster; stdin may be nil.
func (cp *ControlPlane) Run(stdin []byte, args ...string) (string, error) {
	cmd := exec.Command(cp.Kubectl, append([]string{"--kubeconfig=" + cp.Kubeconfig}, args...)...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.String() + errb.String(), fmt.Errorf("kubectl %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	// With --warnings-as-errors a warning fails the command; without, keep
	// warnings visible to the caller.
	return out.String() + errb.String(), nil
}

// Logs returns the last lines of a component's log, for failure messages.
func (cp *ControlPlane) Logs(name string, lines int) string {
	for _, p := range cp.procs {
		if p.name != name {
			continue
		}
		b, _ := os.ReadFile(p.log)
		all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		if len(all) > lines {
			all = all[len(all)-lines:]
		}
		return strings.Join(all, "\n")
	}
	return ""
}

// Stop ends every process this control plane started, newest first, and
// removes its directory.
func (cp *ControlPlane) Stop() {
	for i := len(cp.procs) - 1; i >= 0; i-- {
		p := cp.procs[i]
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	cp.procs = nil
	os.RemoveAll(cp.Dir)
}

func (cp *ControlPlane) start(name, path string, args ...string) error {
	logPath := filepath.Join(cp.Dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return err
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = f, f
	// Its own process group: a Ctrl-C of the test reaches us, and Stop ends
	// each process by its pid.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { cmd.Wait(); f.Close(); close(p.done) }()
	cp.procs = append(cp.procs, p)
	// Fail fast when a component exits at once (bad flag, port taken).
	select {
	case <-p.done:
		return fmt.Errorf("%s exited at start:\n%s", name, cp.Logs(name, 30))
	case <-time.After(300 * time.Millisecond):
	}
	return nil
}

func (cp *ControlPlane) waitReady(timeout time.Duration) error {
	client := &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last string
	for ctx.Err() == nil {
		for _, p := range cp.procs {
			select {
			case <-p.done:
				return fmt.Errorf("%s exited:\n%s", p.name, cp.Logs(p.name, 40))
			default:
			}
		}
		req, _ := http.NewRequestWithContext(ctx, "GET", cp.URL+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+cp.Token)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("kube-apiserver not ready after %s (%s):\n%s", timeout, last, cp.Logs("kube-apiserver", 40))
}

func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	if len(ports) != n {
		return nil, errors.New("no free ports")
	}
	return ports, nil
}
