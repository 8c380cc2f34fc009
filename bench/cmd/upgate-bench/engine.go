package main

import (
	"fmt"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"golang.org/x/sys/unix"

	"github.com/upgate/upgate/bench/internal/loadgen"
	"github.com/upgate/upgate/loop/tlsrec"
)

// Connection states of the engine.
const (
	stFree       uint8 = iota
	stConnecting       // connect(2) in progress
	stWaiting          // request written, waiting for the 101
	stOpen             // WebSocket open
)

// conn is one client connection. Conns are reused through the engine's
// free list; only the engine's goroutine touches them.
type conn struct {
	fd     int
	state  uint8
	key    int              // index of the request in the key ring
	t0     int64            // when connect(2) was called (ns since the engine's base)
	ring   *loadgen.KeyRing // where its upgrade request comes from
	in     []byte           // unread input (plaintext)
	wpend  []byte           // output the socket did not take yet
	tls    *tlsrec.Conn     // wss://: the record layer (nil: ws://)
	sealed []byte           // wss://: records read but not opened yet

	// Scenario state.
	pub    bool   // broadcast publisher
	seq    uint64 // echo: messages sent
	sentAt int64  // echo: when the message in flight was sent
	out    []byte // echo: the payload in flight
	mask   [4]byte

	// permessage-deflate (-deflate).
	wire     int    // frame bytes of the message in flight
	takeover bool   // the server keeps its deflate context
	window   []byte // with takeover: the last 32 KiB the server sent
}

// hooks are a scenario's reactions to connection events.
type hooks interface {
	// opened is called once a connection got a valid 101; c.in may already
	// hold frames that followed it.
	opened(c *conn)
	// message delivers a complete data frame of an open connection.
	message(c *conn, op byte, payload []byte)
	// lost is called when an open connection ends.
	lost(c *conn)
}

// engine drives client connections on one epoll instance.
type engine struct {
	p      *loadgen.Poller
	h      hooks
	conns  []*conn // by fd
	free   []*conn
	dst    *unix.SockaddrInet4
	d      *loadgen.Dialer
	keys   *loadgen.KeyRing
	verify bool
	rst    bool           // close with SO_LINGER 0
	dfl    *deflateClient // -deflate: the messages and their codec (nil: none)
	// abort, once set, ends fillTo: the server cannot run the scenario.
	abort error
	base  time.Time
	lg    unix.Linger

	timeout int64 // ns from connect to 101

	// Counters. counting gates which handshakes are measured.
	counting   bool
	handshakes int64
	failed     int64
	refused    int64
	errs       map[string]int64
	hist       *hdrhistogram.Histogram // connect → 101, ns

	pending int // connecting or waiting
	open    int
	wbuf    []byte
	tbuf    []byte // wss://: wbuf sealed
}

func newEngine(cfg *config, h hooks) (*engine, error) {
	dst, err := loadgen.Sockaddr4(cfg.addr)
	if err != nil {
		return nil, err
	}
	p, err := loadgen.NewPoller(1024)
	if err != nil {
		return nil, err
	}
	e := &engine{
		p:       p,
		h:       h,
		conns:   make([]*conn, 1<<16),
		dst:     dst,
		d:       loadgen.NewDialer(p, cfg.sources),
		verify:  cfg.verifyAccept,
		rst:     cfg.closeMode == "rst",
		base:    time.Now(),
		lg:      unix.Linger{Onoff: 1, Linger: 0},
		timeout: int64(cfg.hsTimeout),
		errs:    map[string]int64{},
		hist:    newHist(),
	}
	if cfg.deflate != "" {
		if e.dfl, err = newDeflateClient(e, cfg.deflate); err != nil {
			return nil, err
		}
	}
	e.keys = loadgen.NewKeyRing(4096, cfg.addr, cfg.path, e.dfl.headers()...)
	return e, nil
}

func newHist() *hdrhistogram.Histogram {
	return hdrhistogram.New(1_000, int64(60*time.Second), 3)
}

func (e *engine) now() int64 { return int64(time.Since(e.base)) }

func (e *engine) getConn() *conn {
	if n := len(e.free); n > 0 {
		c := e.free[n-1]
		e.free = e.free[:n-1]
		return c
	}
	return &conn{in: make([]byte, 0, 512)}
}

// fail counts a failed handshake or connection.
func (e *engine) fail(kind string, refused bool) {
	if !e.counting {
		return
	}
	if refused {
		e.refused++
		return
	}
	e.failed++
	e.errs[kind]++
}

// dial starts one connection, timed from t0 (0: now); it reports false when
// the attempt failed at once (the caller then stops dialing for this round).
func (e *engine) dial(ring *loadgen.KeyRing, t0 int64) bool {
	fd, op, err := e.d.Socket()
	if err != nil {
		e.fail(loadgen.ErrKind(op, err))
		return false
	}
	if e.rst {
		_ = unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &e.lg)
	}
	c := e.getConn()
	if t0 == 0 {
		t0 = e.now()
	}
	c.fd, c.state, c.ring, c.t0 = fd, stConnecting, ring, t0
	c.key = ring.Take()
	dst := e.dst
	if ring.Dst != nil {
		dst = ring.Dst
	}
	if op, err := e.d.Connect(fd, dst); err != nil {
		e.free = append(e.free, c)
		e.fail(loadgen.ErrKind(op, err))
		return false
	}
	e.conns[fd] = c
	e.pending++
	return true
}

// closeConn closes c's socket and recycles c.
func (e *engine) closeConn(c *conn) {
	switch c.state {
	case stConnecting, stWaiting:
		e.pending--
	case stOpen:
		e.open--
	}
	_ = unix.Close(c.fd)
	e.conns[c.fd] = nil
	c.state, c.fd = stFree, -1
	c.in, c.wpend, c.out = c.in[:0], nil, nil
	c.tls, c.sealed = nil, c.sealed[:0]
	c.pub, c.seq, c.ring = false, 0, nil
	c.takeover, c.window = false, c.window[:0]
	e.free = append(e.free, c)
}

// poll waits up to msec for events and handles them.
func (e *engine) poll(msec int) error {
	evs, err := e.p.Wait(msec)
	if err != nil {
		return err
	}
	for i := range evs {
		if e.p.Timer(evs[i].Fd) {
			continue
		}
		c := e.conns[evs[i].Fd]
		if c == nil {
			continue
		}
		e.handle(c, evs[i].Events)
	}
	return nil
}

func (e *engine) handle(c *conn, ev uint32) {
	if c.state == stConnecting {
		req := c.ring.Reqs[c.key]
		n, err := unix.Write(c.fd, req)
		if err != nil || n != len(req) {
			if err == nil {
				err = unix.EIO
			}
			e.fail(loadgen.ErrKind("connect", err))
			e.closeConn(c)
			return
		}
		c.state = stWaiting
		if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) == 0 {
			return
		}
	}
	if ev&unix.EPOLLOUT != 0 && len(c.wpend) > 0 {
		if !e.flushPending(c) {
			return
		}
	}
	if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		e.readable(c)
	}
}

// readable reads everything the socket has (edge-triggered) and processes it.
func (e *engine) readable(c *conn) {
	for {
		buf := &c.in
		if c.tls != nil {
			buf = &c.sealed
		}
		if len(*buf) == cap(*buf) {
			grown := make([]byte, len(*buf), max(2*cap(*buf), 512))
			copy(grown, *buf)
			*buf = grown
		}
		n, err := unix.Read(c.fd, (*buf)[len(*buf):cap(*buf)])
		if err == unix.EAGAIN {
			return
		}
		if err == unix.EINTR {
			continue
		}
		if n == 0 && err == nil {
			e.ended(c, "read: eof", false)
			return
		}
		if err != nil {
			e.endedErr(c, "read", err)
			return
		}
		old := len(c.in)
		*buf = (*buf)[:len(*buf)+n]
		if c.tls != nil && !e.unseal(c) {
			return
		}
		if c.state == stWaiting {
			from := max(old-3, 0)
			i := loadgen.HeadEnd(c.in[from:])
			if i < 0 {
				if len(c.in) > 16<<10 {
					e.ended(c, "response head too long", false)
					return
				}
				continue
			}
			if !e.upgraded(c, from+i+4) {
				return
			}
		}
		if c.state == stOpen && !e.frames(c) {
			return
		}
	}
}

// unseal opens the whole records in c.sealed into c.in; it reports whether
// c is still open.
func (e *engine) unseal(c *conn) bool {
	m, in, err := c.tls.Decrypt(c.in, c.sealed)
	c.in = in
	c.sealed = c.sealed[:copy(c.sealed, c.sealed[m:])]
	if err != nil {
		e.ended(c, "tls: "+err.Error(), false)
		return false
	}
	return true
}

// endedErr closes c after a socket error.
func (e *engine) endedErr(c *conn, op string, err error) {
	kind, refused := loadgen.ErrKind(op, err)
	e.ended(c, kind, refused)
}

// ended closes c after EOF or an error: a handshake failure while waiting,
// a lost connection once open.
func (e *engine) ended(c *conn, kind string, refused bool) {
	if c.state == stOpen {
		e.h.lost(c)
		if e.counting {
			e.errs["lost: "+kind]++
		}
	} else {
		e.fail(kind, refused)
	}
	e.closeConn(c)
}

// upgraded checks the response head of c (its first n bytes); it reports
// whether c is still open.
func (e *engine) upgraded(c *conn, n int) bool {
	var want []byte
	if e.verify {
		want = c.ring.Accepts[c.key]
	}
	if why := loadgen.CheckResponse(c.in[:n], want); why != "" {
		e.fail(why, false)
		e.closeConn(c)
		return false
	}
	if e.dfl != nil {
		if why := e.dfl.upgraded(c, c.in[:n]); why != "" {
			// Counted even before measuring: a server that declines
			// cannot run the scenario at all.
			e.failed++
			e.errs[why]++
			e.abort = fmt.Errorf("%s: %s", e.dfl.info.Mode, why)
			if why == whyDeclined {
				e.abort = fmt.Errorf("%s: %w", e.dfl.info.Mode, errDeclined)
			}
			e.closeConn(c)
			return false
		}
	}
	if e.counting {
		e.handshakes++
		_ = e.hist.RecordValue(e.now() - c.t0)
	}
	c.in = c.in[:copy(c.in, c.in[n:])]
	e.pending--
	e.open++
	c.state = stOpen
	e.h.opened(c)
	return c.state == stOpen
}

// frames processes the complete frames in c.in; it reports whether c is
// still open.
func (e *engine) frames(c *conn) bool {
	off := 0
	for {
		op, payload, n, err := loadgen.ParseFrame(c.in[off:])
		if err != nil {
			e.ended(c, err.Error(), false)
			return false
		}
		if n == 0 {
			break
		}
		off += n
		switch op {
		case loadgen.OpPing:
			e.send(c, loadgen.OpPong, payload)
		case loadgen.OpClose:
			e.ended(c, "server close frame", false)
			return false
		case loadgen.OpPong:
		default:
			e.h.message(c, op, payload)
		}
		if c.state != stOpen {
			return false
		}
	}
	if off > 0 {
		c.in = c.in[:copy(c.in, c.in[off:])]
	}
	return true
}

// send writes one masked frame to c, keeping what the socket does not take.
func (e *engine) send(c *conn, op byte, payload []byte) {
	e.wbuf = loadgen.AppendMasked(e.wbuf[:0], op, payload, c.mask)
	out := e.wbuf
	if c.tls != nil {
		var err error
		if e.tbuf, err = c.tls.Encrypt(e.tbuf[:0], e.wbuf); err != nil {
			e.ended(c, "tls: "+err.Error(), false)
			return
		}
		out = e.tbuf
	}
	if len(c.wpend) > 0 {
		c.wpend = append(c.wpend, out...)
		return
	}
	n, err := unix.Write(c.fd, out)
	if err == unix.EAGAIN {
		n, err = 0, nil
	}
	if err != nil {
		e.endedErr(c, "write", err)
		return
	}
	if n < len(out) {
		c.wpend = append([]byte(nil), out[n:]...)
	}
}

// flushPending writes c's pending output; it reports whether c is open.
func (e *engine) flushPending(c *conn) bool {
	var err error
	if c.wpend, err = loadgen.Flush(c.fd, c.wpend); err != nil {
		e.endedErr(c, "write", err)
		return false
	}
	return true
}

// expire fails the handshakes older than the timeout.
func (e *engine) expire() {
	if e.timeout <= 0 || e.pending == 0 {
		return
	}
	now := e.now()
	for _, c := range e.conns {
		if c != nil && (c.state == stConnecting || c.state == stWaiting) && now-c.t0 > e.timeout {
			e.fail("timeout", false)
			e.closeConn(c)
		}
	}
}

// closeAll closes every connection.
func (e *engine) closeAll() {
	for _, c := range e.conns {
		if c != nil {
			e.closeConn(c)
		}
	}
}
