//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"net"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// Reuse of connection state. Every accepted connection needs a conn; a
// loop keeps the conns of its closed plain connections in a free list, up
// to Options.ConnPool, and takes the next connection's from there, so a
// handshake allocates nothing in upgate's code once the list has filled
// (TestConnectionCost). Handlers hold Conn handles, which carry the
// connection's id and fail once their conn serves another (handle.go).
//
// A conn goes back to the list when nothing on the loop refers to it any
// more: gnet has closed it (OnClose), the Handler's OnClose has returned
// (it may be deferred behind the Handler call in progress), and the read
// callback it was closed in has returned. And only when no other goroutine
// may still act on it through the loop: no write of it waits in the inbox
// (pending is 0, checked under the inbox lock, which every goroutine
// queuing a write takes after its check of the phase), and it was not a
// TLS connection, whose handshake goroutine may outlive it, nor one handed
// over (Decision.Handoff), whose handler goes on using its handle's
// addresses for as long as it serves the socket. Such conns are left to
// the garbage collector instead.

// conn.hold bits: what still refers to a closed conn.
const (
	hReport uint8 = 1 << iota // a Handler.OnClose call for it waits in l.deferred
	hFree                     // it is in the free list
)

// newConn returns a conn for a connection gnet just accepted, from the
// free list when it has one. Loop goroutine.
func (l *evloop) newConn(gc gnet.Conn, id uint64, remote *net.TCPAddr) *conn {
	var c *conn
	if n := len(l.free); n > 0 {
		c = l.free[n-1]
		l.free[n-1] = nil
		l.free = l.free[:n-1]
		c.hold = 0
	} else {
		c = &conn{l: l, tslot: -1}
	}
	c.gc = gc
	c.remote.Store(remote)
	c.accepted.Store(int64(time.Since(l.srv.start)))
	// The id before the generation: a goroutine holding a handle of the
	// conn's previous connection reads st, then id (leaveOpenOf), so when
	// it still sees its id, the st it read is the previous connection's
	// and its compare-and-swap fails.
	c.id.Store(id)
	gen := c.st.Load() >> stGenShift
	c.st.Store((gen+1)<<stGenShift | stHead)
	return c
}

// recycle puts c in the free list if nothing refers to it any more, else
// leaves it to the garbage collector or to a later call. Loop goroutine;
// called once c is closed, after each of the events that may be the last.
func (l *evloop) recycle(c *conn) {
	if c.phase() != stClosed || c.hold != 0 || c == l.cur {
		return
	}
	c.hold = hFree
	if c.kind()&(xfTLS|xfHandoff) != 0 || len(l.free) >= l.srv.opts.ConnPool {
		return
	}
	l.in.mu.Lock()
	idle := c.pending.Load() == 0
	l.in.mu.Unlock()
	if !idle {
		return
	}
	l.unlink(c) // both done by OnClose already; kept cheap and certain
	l.releaseAux(c)
	c.gc = nil
	if !l.srv.opts.KeepContext {
		c.ctx = nil
	}
	c.x.Store(nil)
	c.pmd.Store(0)
	c.flags, c.why, c.code, c.tlsEnded = 0, 0, 0, false
	c.tat, c.lastRead, c.mark, c.maxMsg = 0, 0, 0, 0
	l.free = append(l.free, c)
}
