//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// Reaching every loop at Start.
//
// gnet does not list its event loops: the server learns of a loop from the
// first connection gnet hands it (Conn.EventLoop). So that Execute reaches
// every loop from the moment Start returns, before any client connected,
// Start connects to its own listener until each loop has been seen: gnet's
// acceptor hands the connections out by its load balancer (round robin by
// default: one each), and each stays open until all loops are bound, so
// that a least-connections balancer spreads them too. These probes bind
// their loop (loopOf) and are then closed; they never reach the Handler,
// the counters or the descriptor guard. The server tells a probe from a
// client by its source address, which the probe binds before it connects
// and records first.
//
// A loop that is still not reached after reachTimeout or probesPerLoop
// probes per loop (a listener that is not reachable from this host, a
// balancer that hashes sources unluckily)
// is bound by its first client instead; until then Execute queues for it.
// A warning says so.

// reachTimeout bounds the time Start spends reaching its loops, and
// probesPerLoop the probes it opens (each holds two descriptors until the
// end): round robin needs one per loop, a balancer that hashes sources a
// few more.
const (
	reachTimeout  = 2 * time.Second
	probesPerLoop = 4
)

// probeMark is the gnet context of a probe connection.
type probeMark struct{}

// probeSet holds the source addresses of the probes in flight.
type probeSet struct {
	active atomic.Bool // reachLoops is running: OnOpen checks take
	mu     sync.Mutex
	addrs  map[netip.AddrPort]chan struct{}
}

// add records a probe's source address and returns the channel closed when
// the server has seen it.
func (p *probeSet) add(a netip.AddrPort) chan struct{} {
	ch := make(chan struct{})
	p.mu.Lock()
	p.addrs[a] = ch
	p.mu.Unlock()
	return ch
}

// take reports whether gc is a probe, and marks it seen. Loop goroutine.
func (p *probeSet) take(gc gnet.Conn) bool {
	ra, ok := gc.RemoteAddr().(*net.TCPAddr)
	if !ok {
		return false
	}
	a := ra.AddrPort()
	a = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
	p.mu.Lock()
	ch, ok := p.addrs[a]
	delete(p.addrs, a)
	p.mu.Unlock()
	if ok {
		close(ch)
	}
	return ok
}

// unbound counts the loops not bound yet.
func (s *Server) unbound() int {
	n := 0
	for _, l := range *s.loops.Load() {
		if !l.bound.Load() {
			n++
		}
	}
	return n
}

// reachLoops connects to the listener until every loop is bound or
// reachTimeout passed (see above). Start's goroutine, after OnBoot.
func (s *Server) reachLoops() {
	tcp, ok := s.reachAddr().(*net.TCPAddr)
	if !ok || s.unbound() == 0 {
		return
	}
	ip := tcp.AddrPort().Addr().Unmap()
	port := tcp.AddrPort().Port()
	loop4 := netip.AddrFrom4([4]byte{127, 0, 0, 1})
	// A wildcard listener is reached on loopback: ::1 for [::], or
	// 127.0.0.1 when the host has no IPv6 loopback (a dual-stack socket
	// takes IPv4 too).
	var fallback netip.Addr
	if ip.IsUnspecified() {
		if ip.Is4() {
			ip = loop4
		} else {
			ip, fallback = netip.IPv6Loopback(), loop4
		}
	}
	target := netip.AddrPortFrom(ip, port)

	s.probes.mu.Lock()
	s.probes.addrs = make(map[netip.AddrPort]chan struct{})
	s.probes.mu.Unlock()
	s.probes.active.Store(true)
	var conns []net.Conn
	defer func() {
		s.probes.active.Store(false)
		s.probes.mu.Lock()
		s.probes.addrs = nil // probes never seen stay out of the next check
		s.probes.mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	}()

	deadline := time.Now().Add(reachTimeout)
	most := probesPerLoop * len(*s.loops.Load())
	for s.unbound() > 0 && !s.draining.Load() && len(conns) < most {
		left := time.Until(deadline)
		if left <= 0 {
			break
		}
		c, seen, err := s.probe(target, left)
		if err != nil && fallback.IsValid() && len(conns) == 0 {
			target, fallback = netip.AddrPortFrom(fallback, port), netip.Addr{}
			c, seen, err = s.probe(target, left)
		}
		if err != nil {
			s.opts.Logger.Warnf("loop: reaching the event loops: %v", err)
			break
		}
		conns = append(conns, c)
		timer := time.NewTimer(left)
		select {
		case <-seen:
		case <-timer.C:
		case <-s.done:
		}
		timer.Stop()
	}
	if n := s.unbound(); n > 0 {
		s.opts.Logger.Warnf("loop: %d of %d event loops not reached at start: "+
			"work for them waits for their first connection", n, len(*s.loops.Load()))
	}
}

// probe connects to target from a source address it binds and records
// first, and writes one byte (TCP_DEFER_ACCEPT hands over a connection only
// once data arrived).
func (s *Server) probe(target netip.AddrPort, timeout time.Duration) (net.Conn, chan struct{}, error) {
	var seen chan struct{}
	d := net.Dialer{
		Timeout: timeout,
		Control: func(_, _ string, rc syscall.RawConn) error {
			var err error
			cerr := rc.Control(func(fd uintptr) {
				var src netip.AddrPort
				if src, err = bindAny(int(fd), target.Addr()); err == nil {
					seen = s.probes.add(src)
				}
			})
			if cerr != nil {
				return cerr
			}
			return err
		},
	}
	c, err := d.Dial("tcp", target.String())
	if err != nil {
		return nil, nil, err
	}
	if _, err := c.Write([]byte{'\n'}); err != nil {
		_ = c.Close()
		return nil, nil, err
	}
	return c, seen, nil
}

// bindAny binds fd to ip with a port of the kernel's choice and returns the
// address bound.
func bindAny(fd int, ip netip.Addr) (netip.AddrPort, error) {
	var sa unix.Sockaddr
	if ip.Is4() {
		sa = &unix.SockaddrInet4{Addr: ip.As4()}
	} else {
		sa = &unix.SockaddrInet6{Addr: ip.As16()}
	}
	if err := unix.Bind(fd, sa); err != nil {
		return netip.AddrPort{}, err
	}
	got, err := unix.Getsockname(fd)
	if err != nil {
		return netip.AddrPort{}, err
	}
	switch a := got.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)), nil
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr).Unmap(), uint16(a.Port)), nil
	}
	return netip.AddrPort{}, unix.EAFNOSUPPORT
}
