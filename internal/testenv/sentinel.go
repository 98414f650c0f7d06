package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hospital-erp/hospital-erp/internal/localpg"
)

// Sentinel is a Redis master with replicas watched by three Sentinels, as
// the Kubernetes manifests run it: the set-up whose failover the backend's
// go-redis failover client must follow.
type Sentinel struct {
	// MasterName is the name the Sentinels monitor.
	MasterName string
	servers    []*Redis
	sentinels  []*Redis
}

// StartSentinel starts a master, replicas replicas and three Sentinels
// under dir (down-after 1 s, so a failover takes a few seconds) and waits
// until every Sentinel knows the master, the replicas and each other.
func StartSentinel(dir string, replicas int) (*Sentinel, error) {
	bin, err := findBinary("redis-server")
	if err != nil {
		return nil, err
	}
	sbin, err := findBinary("redis-sentinel")
	if err != nil {
		return nil, err
	}
	s := &Sentinel{MasterName: "mymaster"}
	fail := func(err error) (*Sentinel, error) {
		s.Stop()
		return nil, err
	}
	var master string
	for i := 0; i <= replicas; i++ {
		port, err := localpg.FreePort()
		if err != nil {
			return fail(err)
		}
		r := &Redis{Port: port, dir: filepath.Join(dir, fmt.Sprintf("redis-%d", port)), bin: bin}
		r.args = []string{"--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0", "--repl-timeout", "5"}
		if i > 0 {
			r.args = append(r.args, "--replicaof", "127.0.0.1", strconv.Itoa(s.servers[0].Port))
		}
		if err := os.MkdirAll(r.dir, 0o755); err != nil {
			return fail(err)
		}
		if err := r.Start(); err != nil {
			return fail(err)
		}
		s.servers = append(s.servers, r)
		if i == 0 {
			master = r.Addr()
		}
	}
	mhost, mport, _ := net.SplitHostPort(master)
	for range 3 {
		port, err := localpg.FreePort()
		if err != nil {
			return fail(err)
		}
		r := &Redis{Port: port, dir: filepath.Join(dir, fmt.Sprintf("sentinel-%d", port)), bin: sbin, sentinel: true}
		if err := os.MkdirAll(r.dir, 0o755); err != nil {
			return fail(err)
		}
		conf := fmt.Sprintf(`port %d
bind 127.0.0.1
dir %s
sentinel monitor %s %s %s 2
sentinel down-after-milliseconds %s 1000
sentinel failover-timeout %s 10000
sentinel parallel-syncs %s 2
`, port, r.dir, s.MasterName, mhost, mport, s.MasterName, s.MasterName, s.MasterName)
		// Each Sentinel rewrites its own configuration file.
		if err := os.WriteFile(filepath.Join(r.dir, "sentinel.conf"), []byte(conf), 0o600); err != nil {
			return fail(err)
		}
		if err := r.Start(); err != nil {
			return fail(err)
		}
		s.sentinels = append(s.sentinels, r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.waitKnown(ctx, replicas); err != nil {
		return fail(err)
	}
	return s, nil
}

// waitKnown polls SENTINEL MASTER on every Sentinel until each counts
// the replicas and the two other Sentinels.
func (s *Sentinel) waitKnown(ctx context.Context, replicas int) error {
	for {
		ok := true
		for _, sn := range s.sentinels {
			c := redis.NewSentinelClient(&redis.Options{Addr: sn.Addr()})
			info, err := c.Master(ctx, s.MasterName).Result()
			c.Close()
			if err != nil || info["num-slaves"] != strconv.Itoa(replicas) || info["num-other-sentinels"] != "2" {
				ok = false
				break
			}
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.New("sentinels did not discover the replicas and each other in time")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Addrs are the Sentinels' host:port (REDIS_SENTINEL_ADDRS).
func (s *Sentinel) Addrs() []string {
	var out []string
	for _, sn := range s.sentinels {
		out = append(out, sn.Addr())
	}
	return out
}

// Master asks a Sentinel for the current master's address.
func (s *Sentinel) Master(ctx context.Context) (string, error) {
	var last error
	for _, sn := range s.sentinels {
		c := redis.NewSentinelClient(&redis.Options{Addr: sn.Addr()})
		addr, err := c.GetMasterAddrByName(ctx, s.MasterName).Result()
		c.Close()
		if err == nil && len(addr) == 2 {
			return net.JoinHostPort(addr[0], addr[1]), nil
		}
		last = err
	}
	return "", fmt.Errorf("no sentinel knows the master: %v", last)
}

// KillMaster kills the current master abruptly and returns its address.
func (s *Sentinel) KillMaster(ctx context.Context) (string, error) {
	addr, err := s.Master(ctx)
	if err != nil {
		return "", err
	}
	for _, r := range s.servers {
		if r.Addr() == addr {
			r.Stop()
			return addr, nil
		}
	}
	return "", fmt.Errorf("master %s is none of ours", addr)
}

// WaitFailover waits until the Sentinels name a master other than old and
// that server answers as a master; it returns the new master's address.
func (s *Sentinel) WaitFailover(ctx context.Context, old string) (string, error) {
	for {
		if addr, err := s.Master(ctx); err == nil && addr != old {
			c := redis.NewClient(&redis.Options{Addr: addr})
			role, err := c.Do(ctx, "ROLE").Slice()
			c.Close()
			if err == nil && len(role) > 0 && role[0] == "master" {
				return addr, nil
			}
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("no failover from %s: %w", old, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop stops every server and Sentinel.
func (s *Sentinel) Stop() {
	for _, r := range append(s.sentinels, s.servers...) {
		r.Stop()
	}
}
