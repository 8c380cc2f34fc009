package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/upgate/upgate/bench/internal/loadgen"
)

// Connection states of the engine.
const (
	stFree       uint8 = iota
	stConnecting       // connect(2) in progress
	stWaiting          // request (or part of it, or nothing) written; waiting for the answer
	stOpen             // WebSocket open
)

// Roles of connections; each scenario uses some.
const (
	roleEcho    uint8 = iota // echoes messages
	roleSub                  // subscribed to a topic
	roleProbe                // one handshake, then closed
	rolePartial              // sent part of a request head and stalls
	roleSilent               // sent nothing
	roleStorm                // reconnects after every drop or refusal
	roleExtra                // fdlimit: one of the connections beyond the limit
)

var roleNames = [...]string{"echo", "subscriber", "probe", "partial head", "silent", "storm", "extra"}

// endKind says how a connection ended without the client asking.
type endKind uint8

const (
	endStatus  endKind = iota // a response other than 101 (code: the status)
	endClose                  // a close frame from the server (code: its close code)
	endEOF                    // FIN without a response or close frame
	endReset                  // ECONNRESET
	endRefused                // ECONNREFUSED
	endTimeout                // the client's deadline for the connection passed
	endError                  // any other socket or protocol error
)

var endNames = [...]string{"status", "close frame", "closed without a word (FIN)", "reset", "refused", "no answer in time", "error"}

// outcome is how a connection ended.
type outcome struct {
	kind       endKind
	code       int    // status or close code
	retryAfter int    // seconds from Retry-After; -1 without one
	wasOpen    bool   // the WebSocket was open
	detail     string // error details
}

func (o outcome) String() string {
	switch o.kind {
	case endStatus:
		if o.retryAfter >= 0 {
			return fmt.Sprintf("status %d (Retry-After %d)", o.code, o.retryAfter)
		}
		return fmt.Sprintf("status %d", o.code)
	case endClose:
		return fmt.Sprintf("close frame %d", o.code)
	case endError:
		return "error: " + o.detail
	}
	return endNames[o.kind]
}

// conn is one client connection. A scenario owns its conns and may dial
// one again once it ended; only the engine's goroutine touches them.
type conn struct {
	fd       int
	state    uint8
	role     uint8
	id       int    // the scenario's index
	send     []byte // written once connected (nil: nothing)
	accept   []byte // expected Sec-WebSocket-Accept (nil: not checked)
	t0       int64  // connect(2) called (ns since the engine's base)
	tc       int64  // connection established
	deadline int64  // the engine ends the connection with endTimeout then; 0: none
	in       []byte // unprocessed input
	wpend    []byte // output the socket did not take yet
	mask     [4]byte

	// Scenario state.
	seq     uint64 // echo: messages sent; subscriber: last sequence number
	sentAt  int64  // echo: when the message in flight was sent; 0: none in flight
	out     []byte // echo: the payload in flight
	retryAt int64  // storm: when to dial again; 0: not waiting
	done    bool   // the scenario is finished with it
}

// hooks are a scenario's reactions to connection events.
type hooks interface {
	// opened is called once a connection got a valid 101.
	opened(c *conn)
	// message delivers a complete data frame of an open connection.
	message(c *conn, op byte, payload []byte)
	// ended is called once when a connection ends without the client
	// closing it; c is free again (c.state == stFree).
	ended(c *conn, o outcome)
}

// engine drives client connections on one epoll instance, from one
// goroutine.
type engine struct {
	p       *loadgen.Poller
	h       hooks
	conns   []*conn // by fd
	d       *loadgen.Dialer
	base    time.Time
	lg      unix.Linger
	rbuf    []byte
	wbuf    []byte
	open    int   // WebSocket open
	pending int   // connecting or waiting for an answer
	conning int   // connecting (connect(2) not complete)
	pings   int64 // pings answered
}

func newEngine(sources int, h hooks) (*engine, error) {
	p, err := loadgen.NewPoller(1024)
	if err != nil {
		return nil, err
	}
	return &engine{
		p:     p,
		h:     h,
		conns: make([]*conn, 1<<16),
		d:     loadgen.NewDialer(p, sources),
		base:  time.Now(),
		lg:    unix.Linger{Onoff: 1, Linger: 0},
		rbuf:  make([]byte, 64<<10),
	}, nil
}

func (e *engine) now() int64 { return int64(time.Since(e.base)) }

// secs converts an engine time to seconds since the engine started.
func secs(t int64) float64 { return float64(t) / 1e9 }

// request fills c for a handshake from ring: its request and the accept
// value to check.
func request(c *conn, ring *loadgen.KeyRing) {
	k := ring.Take()
	c.send, c.accept = ring.Reqs[k], ring.Accepts[k]
}

// dial starts connecting c to dst, then writes c.send. A connection that
// fails at once ends through the hooks like any other (dial returns
// false then); deadline, when positive, bounds the time to an answer.
func (e *engine) dial(c *conn, dst *unix.SockaddrInet4, deadline time.Duration) bool {
	now := e.now()
	c.t0, c.tc, c.in, c.wpend = now, 0, c.in[:0], nil
	c.deadline = 0
	if deadline > 0 {
		c.deadline = now + int64(deadline)
	}
	c.mask = [4]byte{byte(rand.Uint32()), byte(rand.Uint32()), byte(rand.Uint32()), byte(rand.Uint32())}
	fd, op, err := e.d.Socket()
	if err == nil {
		op, err = e.d.Connect(fd, dst)
	}
	if err != nil {
		e.h.ended(c, errOutcome(op, err))
		return false
	}
	c.fd, c.state = fd, stConnecting
	e.conns[fd] = c
	e.pending++
	e.conning++
	return true
}

// errOutcome classifies a socket error.
func errOutcome(op string, err error) outcome {
	o := outcome{kind: endError, retryAfter: -1, detail: op + ": " + err.Error()}
	switch err {
	case unix.ECONNRESET:
		o.kind = endReset
	case unix.ECONNREFUSED:
		o.kind = endRefused
	case unix.EPIPE:
		o.kind = endReset
	}
	if en, ok := err.(unix.Errno); ok && o.kind == endError {
		o.detail = op + ": " + unix.ErrnoName(en)
	}
	return o
}

// release closes c's socket and frees it; rst closes with SO_LINGER 0.
func (e *engine) release(c *conn, rst bool) {
	switch c.state {
	case stFree:
		return
	case stConnecting:
		e.pending--
		e.conning--
	case stWaiting:
		e.pending--
	case stOpen:
		e.open--
	}
	if rst {
		_ = unix.SetsockoptLinger(c.fd, unix.SOL_SOCKET, unix.SO_LINGER, &e.lg)
	}
	_ = unix.Close(c.fd)
	e.conns[c.fd] = nil
	c.state, c.fd = stFree, -1
	c.in, c.wpend = c.in[:0], nil
}

// drop closes c at the client's request: no hook runs.
func (e *engine) drop(c *conn, rst bool) { e.release(c, rst) }

// end closes c after the server or the network ended it, and tells the
// scenario.
func (e *engine) end(c *conn, o outcome) {
	o.wasOpen = c.state == stOpen
	e.release(c, o.kind == endReset || o.kind == endError)
	e.h.ended(c, o)
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
		if c := e.conns[evs[i].Fd]; c != nil {
			e.handle(c, evs[i].Events)
		}
	}
	return nil
}

func (e *engine) handle(c *conn, ev uint32) {
	if c.state == stConnecting {
		if soerr, err := unix.GetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_ERROR); err != nil || soerr != 0 {
			if err == nil {
				err = unix.Errno(soerr)
			}
			e.end(c, errOutcome("connect", err))
			return
		}
		if ev&(unix.EPOLLOUT|unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP) == 0 {
			return
		}
		c.state, c.tc = stWaiting, e.now()
		e.conning--
		if len(c.send) > 0 {
			c.wpend = c.send
		}
		ev |= unix.EPOLLOUT
	}
	if ev&unix.EPOLLOUT != 0 && len(c.wpend) > 0 && !e.flush(c) {
		return
	}
	if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		e.readable(c)
	}
}

// echoed takes p as the answer to the echo c has in flight: it returns
// the round trip and clears the message in flight, or false when c has
// none in flight or p is not its payload.
func (e *engine) echoed(c *conn, p []byte) (int64, bool) {
	if c.sentAt == 0 || !bytes.Equal(p, c.out) {
		return 0, false
	}
	rtt := e.now() - c.sentAt
	c.sentAt = 0
	return rtt, true
}

// flush writes c's pending output; it reports whether c is still open.
func (e *engine) flush(c *conn) bool {
	var err error
	if c.wpend, err = loadgen.Flush(c.fd, c.wpend); err != nil {
		e.end(c, errOutcome("write", err))
		return false
	}
	return true
}

// send writes one masked frame to an open c, keeping what the socket does
// not take.
func (e *engine) send(c *conn, op byte, payload []byte) {
	if n := len(c.wpend); n > 0 {
		// c.wpend may be the rest of a shared request: never append in place
		c.wpend = loadgen.AppendMasked(c.wpend[:n:n], op, payload, c.mask)
		return
	}
	e.wbuf = loadgen.AppendMasked(e.wbuf[:0], op, payload, c.mask)
	n, err := unix.Write(c.fd, e.wbuf)
	if err == unix.EAGAIN {
		n, err = 0, nil
	}
	if err != nil {
		e.end(c, errOutcome("write", err))
		return
	}
	if n < len(e.wbuf) {
		c.wpend = append([]byte(nil), e.wbuf[n:]...)
	}
}

// readable reads everything the socket has (edge-triggered) and processes it.
func (e *engine) readable(c *conn) {
	fd := c.fd
	for c.state != stFree && c.fd == fd {
		n, err := unix.Read(c.fd, e.rbuf)
		switch {
		case err == unix.EAGAIN:
			return
		case err == unix.EINTR:
			continue
		case err != nil:
			e.end(c, errOutcome("read", err))
			return
		case n == 0:
			e.end(c, outcome{kind: endEOF, retryAfter: -1})
			return
		}
		data := e.rbuf[:n]
		if len(c.in) > 0 {
			c.in = append(c.in, data...)
			data = c.in
		}
		used, ok := e.consume(c, data)
		if !ok {
			return
		}
		c.in = append(c.in[:0], data[used:]...)
		if len(c.in) > 1<<20 {
			e.end(c, outcome{kind: endError, retryAfter: -1, detail: "more than 1 MiB unprocessed"})
			return
		}
	}
}

// consume processes the response head and the frames at the start of
// data; it returns how much it used and whether c is still there.
func (e *engine) consume(c *conn, data []byte) (int, bool) {
	used := 0
	if c.state == stWaiting {
		i := loadgen.HeadEnd(data)
		if i < 0 {
			if len(data) > 16<<10 {
				e.end(c, outcome{kind: endError, retryAfter: -1, detail: "response head too long"})
				return 0, false
			}
			return 0, true
		}
		head := data[:i+4]
		status := loadgen.Status(head)
		if status != 101 {
			o := outcome{kind: endStatus, code: status, retryAfter: -1}
			if v, ok := loadgen.Header(head, "Retry-After"); ok {
				if s, err := strconv.Atoi(string(v)); err == nil && s >= 0 {
					o.retryAfter = s
				}
			}
			e.end(c, o)
			return 0, false
		}
		if why := loadgen.CheckResponse(head, c.accept); why != "" {
			e.end(c, outcome{kind: endError, retryAfter: -1, detail: why})
			return 0, false
		}
		used = i + 4
		e.pending--
		e.open++
		c.state, c.deadline = stOpen, 0
		e.h.opened(c)
		if c.state != stOpen {
			return 0, false
		}
	}
	for {
		op, payload, n, err := loadgen.ParseFrame(data[used:])
		if err != nil {
			e.end(c, outcome{kind: endError, retryAfter: -1, detail: err.Error()})
			return 0, false
		}
		if n == 0 {
			return used, true
		}
		used += n
		switch op {
		case loadgen.OpPing:
			e.pings++
			e.send(c, loadgen.OpPong, payload)
		case loadgen.OpPong:
		case loadgen.OpClose:
			code := 1005
			if len(payload) >= 2 {
				code = int(binary.BigEndian.Uint16(payload))
			}
			// Answer with the same code, as RFC 6455 §5.5.1 asks, then go.
			var b [2]byte
			binary.BigEndian.PutUint16(b[:], uint16(code))
			if code == 1005 {
				e.send(c, loadgen.OpClose, nil)
			} else {
				e.send(c, loadgen.OpClose, b[:])
			}
			if c.state == stOpen {
				e.end(c, outcome{kind: endClose, code: code, retryAfter: -1})
			}
			return 0, false
		default:
			e.h.message(c, op, payload)
		}
		if c.state != stOpen {
			return 0, false
		}
	}
}

// expire ends the connections whose deadline passed.
func (e *engine) expire() {
	now := e.now()
	for _, c := range e.conns {
		if c != nil && c.deadline != 0 && now > c.deadline {
			e.end(c, outcome{kind: endTimeout, retryAfter: -1})
		}
	}
}

// close drops every connection (RST) and releases the poller.
func (e *engine) close() {
	for _, c := range e.conns {
		if c != nil {
			e.drop(c, true)
		}
	}
	e.p.Close()
}
