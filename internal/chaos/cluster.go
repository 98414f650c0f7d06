package chaos

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Cluster runs backends behind NGINX and keeps NGINX's upstreams equal to
// the backends whose /health/ready answers 200, polled every 100 ms: what
// the kubelet's readiness probe, the endpoints controller and the ingress
// controller do together (in Kubernetes with a 5 s probe period, which the
// pod's preStop sleep covers).
type Cluster struct {
	Nginx *Nginx
	dir   string
	env   map[string]string

	mu      sync.Mutex
	members []*Backend
	routed  []string
	seq     int
	changes []Change

	stop chan struct{}
	done chan struct{}
}

// Change is one update of NGINX's upstreams.
type Change struct {
	At        time.Time
	Upstreams []string
}

// StartCluster starts n backends with env under dir, waits until they are
// ready and routes NGINX to them.
func StartCluster(ctx context.Context, dir string, env map[string]string, n int) (*Cluster, error) {
	c := &Cluster{dir: dir, env: env, stop: make(chan struct{}), done: make(chan struct{})}
	for range n {
		if _, _, err := c.Add(ctx); err != nil {
			c.Close()
			return nil, err
		}
	}
	var err error
	if c.Nginx, err = StartNginx(dir, c.ready()); err != nil {
		c.Close()
		return nil, err
	}
	c.routed = c.ready()
	go c.control()
	return c, nil
}

// Add starts one more backend and waits until it is ready (the controller
// then routes to it); it returns the backend and its start-up time.
func (c *Cluster) Add(ctx context.Context) (*Backend, time.Duration, error) {
	c.mu.Lock()
	c.seq++
	name := fmt.Sprintf("backend-%d", c.seq)
	c.mu.Unlock()
	start := time.Now()
	b, err := StartBackend(c.dir, name, c.env)
	if err != nil {
		return nil, 0, err
	}
	if _, err := b.WaitReady(ctx); err != nil {
		b.Kill()
		return nil, 0, err
	}
	c.mu.Lock()
	c.members = append(c.members, b)
	c.mu.Unlock()
	return b, time.Since(start), nil
}

// Members are the backends started and not yet forgotten.
func (c *Cluster) Members() []*Backend {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.members)
}

// Forget drops b from the cluster (after it was killed or stopped).
func (c *Cluster) Forget(b *Backend) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.members = slices.DeleteFunc(c.members, func(m *Backend) bool { return m == b })
}

// WaitRouted waits until NGINX routes to exactly the given backends.
func (c *Cluster) WaitRouted(ctx context.Context, bs ...*Backend) (time.Time, error) {
	var want []string
	for _, b := range bs {
		want = append(want, b.Addr)
	}
	slices.Sort(want)
	for {
		c.mu.Lock()
		got := slices.Clone(c.routed)
		var at time.Time
		if n := len(c.changes); n > 0 {
			at = c.changes[n-1].At
		}
		c.mu.Unlock()
		if slices.Equal(got, want) {
			return at, nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("nginx routes to %v, want %v", got, want)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (c *Cluster) ready() []string {
	hc := &http.Client{Timeout: 500 * time.Millisecond}
	var out []string
	for _, b := range c.Members() {
		select {
		case <-b.Exited():
			continue
		default:
		}
		if Ready(hc, b.URL()) {
			out = append(out, b.Addr)
		}
	}
	slices.Sort(out)
	return out
}

func (c *Cluster) control() {
	defer close(c.done)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		ready := c.ready()
		c.mu.Lock()
		same := slices.Equal(ready, c.routed)
		c.mu.Unlock()
		if same {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := c.Nginx.SetUpstreams(ctx, ready)
		cancel()
		if err == nil {
			c.mu.Lock()
			c.routed = ready
			c.changes = append(c.changes, Change{At: time.Now(), Upstreams: ready})
			c.mu.Unlock()
		}
	}
}

// Close stops the controller, NGINX and every backend.
func (c *Cluster) Close() {
	select {
	case <-c.stop:
	default:
		close(c.stop)
		if c.Nginx != nil {
			<-c.done
		}
	}
	if c.Nginx != nil {
		c.Nginx.Stop()
	}
	for _, b := range c.Members() {
		b.Kill()
	}
}
