//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"errors"
	"net"
	"net/netip"
	"strings"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// Listeners. A server has one listener, plain or TLS, or two on the same
// event loops: Options.Addr plain and Options.TLSAddr TLS, run by gnet's
// multi-address engine (gnet.Rotate). Every loop accepts from both, so the
// loop learns at accept which listener a connection came through, from the
// local address of the accepted socket: the address the client reached,
// whose port is its listener's port, and whose IP is its listener's IP
// unless that listener is a wildcard. gnet's Conn.LocalAddr cannot tell:
// gnet v2.9.7 gives every connection its listener's address as configured,
// port 0 and wildcard included, so two listeners on port 0 of one host
// would look alike; getsockname(2) on the accepted socket asks the kernel.
// With one listener nothing is asked: its connections are all of its kind.

// listener is one listening socket of the server.
type listener struct {
	proto string   // "network://host:port", as given to gnet
	tls   bool     // its connections speak TLS
	bound net.Addr // the address bound (port 0 resolved); set in OnBoot
}

// splitListeners tells the two listeners' connections apart by the local
// address of the accepted socket (see above). Set in OnBoot, read-only after.
type splitListeners struct {
	tlsPort, plainPort uint16
	tlsIP, plainIP     netip.Addr // unmapped; unspecified for a wildcard
}

// withScheme prefixes a listening address without one with "tcp://".
func withScheme(a string) string {
	if !strings.Contains(a, "://") {
		return "tcp://" + a
	}
	return a
}

// listeners returns the listeners o asks for, normalized: the plain one
// first. Two listeners on port 0 of the same host would be the same string,
// and gnet's Engine.DupListener finds a listener by its string: the TLS
// one's port is then written "00", port 0 as well to the resolver.
func (o Options) listeners() []listener {
	addr := withScheme(o.Addr)
	switch {
	case o.TLS == nil:
		return []listener{{proto: addr}}
	case o.TLSAddr == "":
		return []listener{{proto: addr, tls: true}}
	case o.Addr == ListenOff:
		return []listener{{proto: withScheme(o.TLSAddr), tls: true}}
	}
	secure := withScheme(o.TLSAddr)
	pn, ph := splitProtoAddr(addr)
	tn, th := splitProtoAddr(secure)
	if pn == tn && ph == th {
		// normalize refused the same explicit port: this is port 0.
		scheme, _, _ := strings.Cut(secure, "://")
		host, _, _ := net.SplitHostPort(th)
		secure = scheme + "://" + net.JoinHostPort(host, "00")
	}
	return []listener{{proto: addr}, {proto: secure, tls: true}}
}

// listenTarget names the listeners in an error of a server that did not
// start.
func (s *Server) listenTarget() string {
	if len(s.lns) == 1 {
		return s.lns[0].proto
	}
	network, _, _ := strings.Cut(s.lns[0].proto, "://")
	var hosts []string
	for _, ln := range s.lns {
		_, h := splitProtoAddr(ln.proto)
		hosts = append(hosts, h)
	}
	return network + "://" + strings.Join(hosts, " and ")
}

// runEngine runs gnet on the server's listeners until it stops.
func (s *Server) runEngine(opts []gnet.Option) error {
	if len(s.lns) == 1 {
		return gnet.Run((*events)(s), s.lns[0].proto, opts...)
	}
	addrs := make([]string, len(s.lns))
	for i, ln := range s.lns {
		addrs[i] = ln.proto
	}
	return gnet.Rotate((*events)(s), addrs, opts...)
}

// dupListeners returns a duplicate of each listener's descriptor and
// records the address each bound. OnBoot.
func (s *Server) dupListeners(eng gnet.Engine) ([]int, error) {
	fds := make([]int, 0, len(s.lns))
	for i := range s.lns {
		ln := &s.lns[i]
		var fd int
		var err error
		if len(s.lns) == 1 {
			fd, err = eng.Dup()
		} else {
			fd, err = eng.DupListener(splitProtoAddr(ln.proto))
		}
		if err != nil {
			closeAll(fds)
			return nil, err
		}
		fds = append(fds, fd)
		if sa, err := unix.Getsockname(fd); err == nil {
			ln.bound = sockaddrTCP(sa)
		}
	}
	for _, ln := range s.lns {
		if ln.tls {
			s.tlsAddr = ln.bound
		}
		if !ln.tls || s.opts.TLSAddr == "" {
			s.addr = ln.bound // Addr's listener, plain or (alone) TLS
		}
	}
	if len(s.lns) == 2 {
		if s.split = newSplit(s.lns[0].bound, s.lns[1].bound); s.split == nil {
			closeAll(fds)
			return nil, errors.New("loop: Addr and TLSAddr together need TCP addresses")
		}
	}
	return fds, nil
}

func closeAll(fds []int) {
	for _, fd := range fds {
		_ = unix.Close(fd)
	}
}

// newSplit returns the rule telling the connections of a plain and a TLS
// listener apart; nil when an address is not TCP.
func newSplit(plain, secure net.Addr) *splitListeners {
	p, ok1 := plain.(*net.TCPAddr)
	t, ok2 := secure.(*net.TCPAddr)
	if !ok1 || !ok2 {
		return nil
	}
	pa, ta := p.AddrPort(), t.AddrPort()
	return &splitListeners{
		tlsPort: ta.Port(), plainPort: pa.Port(),
		tlsIP: ta.Addr().Unmap(), plainIP: pa.Addr().Unmap(),
	}
}

// isTLS reports whether a connection whose socket's local address is a
// came through the TLS listener.
func (sp *splitListeners) isTLS(a netip.AddrPort) bool {
	port, ip := a.Port(), a.Addr().Unmap()
	switch {
	case sp.tlsPort != sp.plainPort:
		return port == sp.tlsPort
	case ip == sp.tlsIP:
		return true
	case ip == sp.plainIP:
		return false
	}
	// The same port on two IPs, one of them a wildcard: it takes the rest.
	return sp.tlsIP.IsUnspecified()
}

// acceptedTLS reports whether gc, just accepted, came through the TLS
// listener; ok is false when the server cannot tell (getsockname failed,
// which leaves the connection nothing to be served by). Loop goroutine.
func (s *Server) acceptedTLS(gc gnet.Conn) (secure, ok bool) {
	if s.opts.TLS == nil {
		return false, true
	}
	if s.split == nil {
		return s.lns[len(s.lns)-1].tls, true
	}
	sa, err := unix.Getsockname(gc.Fd())
	if err != nil {
		return false, false
	}
	var a netip.AddrPort
	switch v := sa.(type) {
	case *unix.SockaddrInet4:
		a = netip.AddrPortFrom(netip.AddrFrom4(v.Addr), uint16(v.Port))
	case *unix.SockaddrInet6:
		a = netip.AddrPortFrom(netip.AddrFrom16(v.Addr), uint16(v.Port))
	default:
		return false, false
	}
	return s.split.isTLS(a), true
}

// TLSAddr returns the address of the listener that speaks TLS (with the
// port the kernel chose for port 0): Options.TLSAddr's, or Options.Addr's
// when TLS has no listener of its own (then the same as Addr). Nil
// without Options.TLS, and before Start. Any goroutine.
func (s *Server) TLSAddr() net.Addr {
	select {
	case <-s.booted:
		return s.tlsAddr
	default:
		return nil
	}
}

// reachAddr is the listener reachLoops connects to: the plain one when
// there is one (a probe then needs no TLS), else the TLS one. Probes are
// told apart before any TLS starts.
func (s *Server) reachAddr() net.Addr {
	if s.addr != nil {
		return s.addr
	}
	return s.tlsAddr
}

// proxyBeforeTLS reads the PROXY protocol header that comes before the
// ClientHello on the TLS listener, as proxyHeader does before a plain head:
// it returns the header's length once it is complete, and the bytes behind
// it go to the handshake. Until then they stay in gnet's buffer. A
// connection that does not begin with a valid header is closed without a
// word (Stats.ProxyErrors), and its handshake ends. Loop goroutine.
func (l *evloop) proxyBeforeTLS(c *conn, buf []byte) (int, bool) {
	n, ok := l.proxyHeader(c, buf)
	if ok {
		return n, true
	}
	if c.flags&fProxy != 0 && c.phase() == stHead {
		return 0, false // incomplete
	}
	_, _ = c.gc.Discard(len(buf))
	c.tlsEnded = true    // a PROXY error, not a TLS failure
	c.tlsSt().tr.Close() // the handshake goroutine returns
	return 0, false
}
