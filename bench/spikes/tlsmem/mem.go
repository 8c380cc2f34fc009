package main

import (
	"io"
	"net"
	"sync"
	"time"
)

// wouldBlock is what the in-memory transport returns when it has no bytes:
// a net.Error with Timeout()==true. Temporary() must also be true, otherwise
// crypto/tls (conn.go readRecordOrCCS) stores it as a permanent error.
type wouldBlock struct{}

func (wouldBlock) Error() string   { return "would block" }
func (wouldBlock) Timeout() bool   { return true }
func (wouldBlock) Temporary() bool { return true }

// memConn is an in-memory net.Conn. Read serves bytes from c.in; in
// blocking mode it waits for bytes, otherwise it returns wouldBlock.
// Write appends to the peer's input (if any) and optionally to c.out.
type memConn struct {
	mu        sync.Mutex
	cond      sync.Cond
	in        []byte
	peer      *memConn
	out       []byte
	tee       bool // also keep written bytes in out
	blocking  bool
	closed    bool
	recLimit  bool // never hand more than the rest of the current record to Read
	recLeft   int
	head      []byte // first 43 input bytes (record hdr + hs hdr + version + random)
	capture   bool
	gate      chan struct{} // if set, Read blocks on it once gateAfter records were served
	gateAfter int
	served    int
}

func newMemConn() *memConn {
	c := &memConn{blocking: true}
	c.cond.L = &c.mu
	return c
}

func newPair() (s, c *memConn) {
	s, c = newMemConn(), newMemConn()
	s.peer, c.peer = c, s
	return
}

func (c *memConn) push(p []byte) {
	c.mu.Lock()
	if c.capture && len(c.head) < 43 {
		n := min(43-len(c.head), len(p))
		c.head = append(c.head, p[:n]...)
	}
	c.in = append(c.in, p...)
	c.cond.Broadcast()
	c.mu.Unlock()
}

func (c *memConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.gate != nil && c.served >= c.gateAfter && c.recLeft == 0 {
		g := c.gate
		c.mu.Unlock()
		<-g
		c.mu.Lock()
		c.gate = nil
	}
	for {
		avail := len(c.in)
		if c.recLimit && c.recLeft == 0 && avail >= 5 {
			c.recLeft = 5 + (int(c.in[3])<<8 | int(c.in[4]))
		}
		if avail > 0 && (!c.recLimit || c.recLeft > 0) {
			break
		}
		if c.closed {
			return 0, io.EOF
		}
		if !c.blocking {
			return 0, wouldBlock{}
		}
		c.cond.Wait()
	}
	n := min(len(p), len(c.in))
	if c.recLimit {
		n = min(n, c.recLeft)
		c.recLeft -= n
		if c.recLeft == 0 {
			c.served++
		}
	}
	copy(p, c.in[:n])
	c.in = c.in[n:]
	if len(c.in) == 0 {
		c.in = nil
	}
	return n, nil
}

func (c *memConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.tee || c.peer == nil {
		c.out = append(c.out, p...)
	}
	peer := c.peer
	c.mu.Unlock()
	if peer != nil {
		peer.push(p)
	}
	return len(p), nil
}

func (c *memConn) setBlocking(b bool) {
	c.mu.Lock()
	c.blocking = b
	c.cond.Broadcast()
	c.mu.Unlock()
}

// take removes and returns all pending input (the event loop's view).
func (c *memConn) take() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.in
	c.in = nil
	return b
}

func (c *memConn) Close() error {
	c.mu.Lock()
	c.closed = true
	c.cond.Broadcast()
	c.mu.Unlock()
	return nil
}

type memAddr struct{}

func (memAddr) Network() string { return "mem" }
func (memAddr) String() string  { return "mem" }

func (c *memConn) LocalAddr() net.Addr                { return memAddr{} }
func (c *memConn) RemoteAddr() net.Addr               { return memAddr{} }
func (c *memConn) SetDeadline(t time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(t time.Time) error { return nil }
