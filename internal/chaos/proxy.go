// Package chaos injects faults into real processes and connections for the
// resilience tests: a TCP proxy that delays, swallows or cuts traffic, the
// backend run as a real subprocess from a binary built once, NGINX in front
// of several backends as the ingress is configured, a load client that
// retries with Idempotency-Keys and records every acknowledged write, and
// the checker that compares those acknowledgements with the database.
// docs/reliability.md lists the scenarios built from them.
package chaos

import (
	"bytes"
	"net"
	"sync"
	"time"
)

// Proxy is a TCP proxy on loopback that forwards to a target and injects
// faults on command: latency, a black hole (connections accepted, nothing
// answered), cutting every connection, or cutting the one connection whose
// client sends a given pattern (say, a COMMIT).
type Proxy struct {
	ln     net.Listener
	target string

	mu        sync.Mutex
	latency   time.Duration
	blackhole bool
	cutOn     []byte
	cutAfter  bool // forward the matching chunk before cutting
	cutDone   chan struct{}
	links     map[*link]struct{}
	closed    bool
}

type link struct {
	client net.Conn
	// drain: the client was cut after its last chunk was forwarded; the
	// server side stays open until the server has answered it (Proxy.mu).
	drain bool

	mu     sync.Mutex // server and closed: a cut can come while serve dials
	server net.Conn
	closed bool
}

// setServer attaches the upstream connection; false when the link was cut
// meanwhile (the caller closes s).
func (l *link) setServer(s net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.server = s
	return true
}

func (l *link) close() {
	l.mu.Lock()
	l.closed = true
	server := l.server
	l.mu.Unlock()
	closeHard(l.client)
	if server != nil {
		closeHard(server)
	}
}

// closeHard closes with RST where it can, as a crashed peer or a dropped
// network path would appear.
func closeHard(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// StartProxy listens on a free loopback port and forwards to target.
func StartProxy(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, links: map[*link]struct{}{}}
	go p.accept()
	return p, nil
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Close stops the proxy and every connection through it.
func (p *Proxy) Close() {
	p.mu.Lock()
	p.closed = true
	links := p.links
	p.links = map[*link]struct{}{}
	p.mu.Unlock()
	_ = p.ln.Close()
	for l := range links {
		l.close()
	}
}

// SetLatency delays every chunk of data in both directions by d (0: none).
func (p *Proxy) SetLatency(d time.Duration) {
	p.mu.Lock()
	p.latency = d
	p.mu.Unlock()
}

// Blackhole makes the proxy swallow everything in both directions (on) or
// forward again (off). Connections stay open: peers see timeouts, not
// refusals, as behind a dead network path.
func (p *Proxy) Blackhole(on bool) {
	p.mu.Lock()
	p.blackhole = on
	p.mu.Unlock()
}

// CutAll closes every open connection abruptly (RST).
func (p *Proxy) CutAll() {
	p.mu.Lock()
	links := p.links
	p.links = map[*link]struct{}{}
	p.mu.Unlock()
	for l := range links {
		l.close()
	}
}

// CutOn arms a one-shot fault: the first chunk a client sends that contains
// pattern cuts that connection. With forward the chunk reaches the server
// first (the request happened, its answer is lost); without, it never does.
// The returned channel is closed when the fault has fired.
func (p *Proxy) CutOn(pattern []byte, forward bool) <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cutOn, p.cutAfter, p.cutDone = bytes.Clone(pattern), forward, make(chan struct{})
	return p.cutDone
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.serve(c)
	}
}

func (p *Proxy) serve(c net.Conn) {
	l := &link{client: c}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		closeHard(c)
		return
	}
	p.links[l] = struct{}{}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.links, l)
		p.mu.Unlock()
		l.close()
	}()
	s, err := net.DialTimeout("tcp", p.target, 2*time.Second)
	if err != nil {
		return // the client sees the connection closed, as with a refused upstream
	}
	if !l.setServer(s) {
		closeHard(s)
		return
	}
	done := make(chan struct{}, 2)
	go func() { p.pump(l, c, s, true); done <- struct{}{} }()
	go func() { p.pump(l, s, c, false); done <- struct{}{} }()
	<-done
	p.mu.Lock()
	drain := l.drain
	p.mu.Unlock()
	if drain {
		// The server's answer to the forwarded chunk ends the other pump
		// (writing it to the cut client fails).
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
	}
}

// pump copies src to dst chunk by chunk, applying the current faults.
func (p *Proxy) pump(l *link, src, dst net.Conn, fromClient bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			p.mu.Lock()
			latency, hole := p.latency, p.blackhole
			cut, forward := false, false
			if fromClient && p.cutOn != nil && bytes.Contains(chunk, p.cutOn) {
				cut, forward = true, p.cutAfter
				p.cutOn = nil
			}
			p.mu.Unlock()
			if latency > 0 {
				time.Sleep(latency)
			}
			if cut {
				p.mu.Lock()
				l.drain = forward
				close(p.cutDone)
				p.mu.Unlock()
				if forward {
					_, _ = dst.Write(chunk)
					closeHard(l.client)
				} else {
					l.close()
				}
				return
			}
			if !hole {
				if _, werr := dst.Write(chunk); werr != nil {
					return
				}
			}
		}
		if err != nil {
			return // EOF or a cut: serve closes both sides
		}
	}
}
