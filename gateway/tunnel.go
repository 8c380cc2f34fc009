package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/upgate/upgate/loop"
	"github.com/upgate/upgate/tunnel"
)

// Tunnels. A route of behaviour TCP accepts "Upgrade: tcp" and splices the
// connection to a new connection to its Upstream; a Websockify route
// accepts WebSocket handshakes and carries its binary messages to and
// from its Upstream as a byte stream (noVNC, browser SSH clients). Both
// dial the upstream before the 101: the handshake waits on the loop
// (Decision.Defer) while a short-lived goroutine connects, within
// Route.ConnectTimeout; a refused or failed connect is answered 502, one
// out of time 504, and neither is switched. Once the 101 is out the loop
// hands the client's socket over (Decision.Handoff) and the tunnel
// reactor (package tunnel) splices the two sockets: zero-copy, with real
// backpressure (a side whose peer is slow is not read) and half-close
// passed through, which gnet's event loop cannot give. Tunnels are served
// on the plain listener; on the TLS listener they are answered 501, since
// the loop holds the TLS session.

const (
	reasonUpstreamDown    = "The upstream service refused the connection."
	reasonUpstreamTimeout = "The upstream service did not answer in time."
	reasonTunnelTLS       = "Tunnels are served on the plain listener only."
	reasonTunnelsFull     = "Too many tunnels on this route; retry later."
)

// DefaultConnectTimeout bounds an upstream connect when
// Route.ConnectTimeout is zero.
const DefaultConnectTimeout = 5 * time.Second

// tunnelStats are a tunnel route's counters.
type tunnelStats struct {
	open        atomic.Int64  // tunnels now
	total       atomic.Uint64 // tunnels opened
	bytesUp     atomic.Uint64 // client to upstream, of ended tunnels
	bytesDown   atomic.Uint64 // upstream to client, of ended tunnels
	refused     atomic.Uint64 // connects refused or failed (502)
	timeouts    atomic.Uint64 // connects out of time (504)
	connectHist histogram
}

// tunnelState is what a tunnel connection keeps in its connExtra.
type tunnelState struct {
	upfd int                           // the upstream socket between the connect and the handoff (loop goroutine); -1 after
	t    atomic.Pointer[tunnel.Tunnel] // set once spliced
}

// openTunnel starts the handshake of a tunnel on rt: the upgrade is put
// off while the upstream is dialled. ws is set for a websockify route,
// whose handshake d.Upgrade then accepts with sub.
func (g *Gateway) openTunnel(r *loop.Request, d *loop.Decision, rt *route, ws bool, sub []byte) {
	if r.Conn.TLS() != nil {
		g.refuse(rt, d, rejTunnel, 501, reasonTunnelTLS, "")
		return
	}
	// Taken, then checked: several loops may open tunnels on the route at
	// once, and a load before the add would let each pass.
	if n := rt.tunnels.open.Add(1); rt.MaxTunnels > 0 && n > int64(rt.MaxTunnels) {
		rt.tunnels.open.Add(-1)
		g.refuse(rt, d, rejTunnel, 503, reasonTunnelsFull, retryAfterHeaders[retryAfterFull])
		return
	}
	if !g.acquireSlot() {
		rt.tunnels.open.Add(-1)
		g.refuse(rt, d, rejMaxConnections, 503, reasonFull, retryAfterHeaders[retryAfterFull])
		return
	}
	// Kept: the dialling goroutine holds the state until its decision.
	c := stateFor(r.Conn, rt, kindTunnel, true)
	req := copyRequest(r.Head)
	req.Route, req.RemoteAddr = rt.Path, r.Conn.RemoteAddr()
	req.ClientAddr = g.clientAddr(r.Conn.ClientAddr().Addr(), r.Head)
	if ws {
		req.Subprotocol = string(sub)
		if sub != nil {
			c.setSubprotocol(sub)
		}
	} else {
		req.Protocol = protoTCP
	}
	x := c.extra()
	x.req, x.tun = req, &tunnelState{upfd: -1}
	subCopy := append([]byte(nil), sub...)
	d.Defer()
	lc := r.Conn
	go g.dialUpstream(lc, c, ws, subCopy)
}

// dialUpstream connects to c's upstream and gives the decision on c's
// loop. It runs on a goroutine of its own for the connect only.
func (g *Gateway) dialUpstream(lc loop.Conn, c *connState, ws bool, sub []byte) {
	rt := c.route()
	timeout := rt.ConnectTimeout
	if timeout <= 0 {
		timeout = DefaultConnectTimeout
	}
	start := time.Now()
	fd, err := dialFD(rt.Upstream, timeout)
	took := time.Since(start)
	lc.Resolve(func(d *loop.Decision, ok bool) {
		if !ok { // the client went away, or the server is stopping
			if err == nil {
				_ = unix.Close(fd)
			}
			g.endTunnel(c)
			return
		}
		if err != nil {
			status, reason := 502, reasonUpstreamDown
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				status, reason = 504, reasonUpstreamTimeout
				rt.tunnels.timeouts.Add(1)
			} else {
				rt.tunnels.refused.Add(1)
			}
			g.endTunnel(c)
			g.refuse(rt, d, rejTunnel, status, reason, "")
			if g.log.Enabled(context.Background(), slog.LevelDebug) {
				g.log.Debug("gateway: upstream connect failed", "route", rt.Path, "upstream", rt.Upstream, "err", err)
			}
			return
		}
		rt.tunnels.connectHist.observe(took)
		c.x.Load().tun.upfd = fd
		if ws {
			d.Upgrade(sub, nil, 0)
		} else {
			d.Switch([]byte(protoTCP))
		}
		d.Handoff = true
	})
}

// dialFD connects to addr within timeout and returns the connection's
// socket as a descriptor of its own (close-on-exec, non-blocking: the
// status flags belong to the open file, which the duplicate shares), the
// net.Conn closed.
func dialFD(addr string, timeout time.Duration) (int, error) {
	nc, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return -1, err
	}
	defer nc.Close()
	rc, err := nc.(*net.TCPConn).SyscallConn()
	if err != nil {
		return -1, err
	}
	fd, derr := -1, error(nil)
	if err := rc.Control(func(s uintptr) {
		fd, derr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, os.NewSyscallError("fcntl", derr)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		_ = unix.Close(fd)
		return -1, os.NewSyscallError("fcntl", err)
	}
	return fd, nil
}

// endTunnel releases what a tunnel that never spliced holds.
func (g *Gateway) endTunnel(c *connState) {
	c.set(stClosed)
	c.route().tunnels.open.Add(-1)
	g.releaseSlot()
}

// OnHandoff implements loop.HandoffHandler: the 101 of a tunnel is out;
// its two sockets go to the tunnel reactor.
func (e *engine) OnHandoff(lc loop.Conn, fd int, rest []byte) {
	g := (*Gateway)(e)
	c := stateOf(lc)
	var ts *tunnelState
	if c != nil {
		if x := c.x.Load(); x != nil {
			ts = x.tun
		}
	}
	if ts == nil || ts.upfd < 0 || g.tunnels == nil {
		_ = unix.Close(fd)
		if ts != nil && ts.upfd >= 0 {
			_ = unix.Close(ts.upfd)
			ts.upfd = -1
		}
		if c != nil {
			g.endTunnel(c)
		}
		return
	}
	upfd := ts.upfd
	ts.upfd = -1
	mode := tunnel.Raw
	rt := c.route()
	if rt.Behaviour == Websockify {
		mode = tunnel.WebSocket
	}
	rt.stats.handshake(101)
	rt.tunnels.total.Add(1)
	g.conns.add(c)
	t, err := g.tunnels.Splice(fd, upfd, rest, mode, func(t *tunnel.Tunnel, err error) {
		rt.tunnels.bytesUp.Add(uint64(t.BytesAB()))
		rt.tunnels.bytesDown.Add(uint64(t.BytesBA()))
		g.conns.remove(c)
		g.endTunnel(c)
		if g.log.Enabled(context.Background(), slog.LevelDebug) {
			g.log.Debug("gateway: tunnel closed", "id", c.tableID(), "route", rt.Path, "up", t.BytesAB(), "down", t.BytesBA(), "err", err)
		}
	})
	if err != nil { // the reactor is stopping: the descriptors are still ours
		_ = unix.Close(fd)
		_ = unix.Close(upfd)
		g.conns.remove(c)
		g.endTunnel(c)
		return
	}
	ts.t.Store(t)
}

// startTunnels starts the tunnel reactor when a route needs it.
func (g *Gateway) startTunnels() error {
	need := false
	for _, rt := range g.routes.all {
		need = need || rt.Behaviour == TCP || rt.Behaviour == Websockify
	}
	if !need {
		return nil
	}
	t := g.cfg.Tunnels
	r, err := tunnel.New(tunnel.Options{
		PipeSize:     t.Buffer,
		IdleTimeout:  t.IdleTimeout,
		DrainTimeout: t.DrainTimeout,
		Reactors:     t.Reactors,
	})
	if err != nil {
		return err
	}
	g.tunnels = r
	return nil
}

// stopTunnels ends every tunnel (a websockify one with 1001) and the
// reactor.
func (g *Gateway) stopTunnels(ctx context.Context) error {
	if g.tunnels == nil {
		return nil
	}
	return g.tunnels.Shutdown(ctx)
}

// tunnelOf returns c's tunnel once spliced, else nil.
func (c Conn) tunnelOf() *tunnel.Tunnel {
	if c.s == nil {
		return nil
	}
	if x := c.s.extraOf(c.ID()); x != nil && x.tun != nil {
		return x.tun.t.Load()
	}
	return nil
}
