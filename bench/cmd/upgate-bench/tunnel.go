package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"golang.org/x/sys/unix"

	"github.com/upgate/upgate/bench/internal/loadgen"
)

// The tunnel scenario: -n tunnels opened with "Upgrade: tcp" through the
// server to an upstream that this process serves itself (-upstream, on
// the client's core), then data pushed one way (or both) for -d. The
// upstream is a sink (it reads and discards, checking the stream) and a
// source (it writes the stream as fast as the socket takes it).

// Tunnel directions.
const (
	dirUp   = "up"   // client to upstream sink
	dirDown = "down" // upstream source to client
	dirBoth = "both"
)

// tunnelReadBuf is the size of every read; writes take -size bytes.
const tunnelReadBuf = 256 << 10

// patternLen is the period of the stream's pattern: a prime, so that
// chunks of any size fall at every offset.
const patternLen = 65521

// Endpoint kinds and states.
const (
	tkClient uint8 = iota + 1 // the client's side of a tunnel
	tkUp                      // an accepted upstream connection
	tkListen                  // the upstream listener
)

// tend is one socket of the scenario: a tunnel's client side or the
// upstream's side of it.
type tend struct {
	fd     int
	kind   uint8
	state  uint8 // stConnecting, stWaiting, stOpen (clients); stOpen (upstream)
	t0     int64
	head   []byte // response head read so far (clients, until the 101)
	send   bool   // writes the stream
	recv   bool   // reads it
	wOff   int    // offset in the pattern of the next byte written
	rOff   int    // offset in the pattern of the next byte expected
	active bool   // data may flow
}

// tunnelEngine drives the tunnels' sockets and the upstream listener on
// one epoll instance.
type tunnelEngine struct {
	p       *loadgen.Poller
	d       *loadgen.Dialer
	dst     *unix.SockaddrInet4
	lfd     int
	ends    []*tend // by fd
	base    time.Time
	req     []byte
	src     []byte // the pattern, patternLen + max(size, tunnelReadBuf) bytes
	rbuf    []byte
	size    int
	dir     string
	verify  bool
	timeout int64
	lg      unix.Linger

	flowing    bool // data flow started: new endpoints start active
	expectEnds bool // upstream sides closing are no loss (setups)
	counting   bool
	pending    int // clients before their 101
	clients    int // clients open
	ups        int // upstream connections open
	received   int64
	sent       int64
	setups     int64 // 101s received while counting setups
	hist       *hdrhistogram.Histogram
	failed     int64
	lostN      int64
	errs       map[string]int64
}

func newTunnelEngine(cfg *config) (*tunnelEngine, error) {
	dst, err := loadgen.Sockaddr4(cfg.addr)
	if err != nil {
		return nil, err
	}
	la, err := loadgen.Sockaddr4(cfg.upstream)
	if err != nil {
		return nil, fmt.Errorf("-upstream: %w", err)
	}
	p, err := loadgen.NewPoller(1024)
	if err != nil {
		return nil, err
	}
	e := &tunnelEngine{
		p: p, d: loadgen.NewDialer(p, cfg.sources), dst: dst, lfd: -1,
		ends: make([]*tend, 1<<16), base: time.Now(),
		req:  []byte("GET " + cfg.path + " HTTP/1.1\r\nHost: " + cfg.addr + "\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"),
		size: cfg.size, dir: cfg.dir, verify: cfg.verifyStream, timeout: int64(cfg.hsTimeout),
		lg: unix.Linger{Onoff: 1, Linger: 0}, hist: newHist(), errs: map[string]int64{},
		rbuf: make([]byte, tunnelReadBuf),
	}
	rng := rand.New(rand.NewPCG(1, 2))
	pat := make([]byte, patternLen)
	for i := range pat {
		pat[i] = byte(rng.Uint32())
	}
	e.src = make([]byte, patternLen+max(cfg.size, tunnelReadBuf))
	for i := range e.src {
		e.src[i] = pat[i%patternLen]
	}
	if err := e.listen(la); err != nil {
		p.Close()
		return nil, err
	}
	return e, nil
}

// listen opens the upstream's listener.
func (e *tunnelEngine) listen(sa *unix.SockaddrInet4) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("upstream socket: %w", err)
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	if err := unix.Bind(fd, sa); err != nil {
		_ = unix.Close(fd)
		return fmt.Errorf("upstream listener on %d.%d.%d.%d:%d: %w", sa.Addr[0], sa.Addr[1], sa.Addr[2], sa.Addr[3], sa.Port, err)
	}
	if err := unix.Listen(fd, 4096); err != nil {
		_ = unix.Close(fd)
		return fmt.Errorf("upstream listen: %w", err)
	}
	if err := e.p.Add(fd); err != nil {
		_ = unix.Close(fd)
		return err
	}
	e.lfd = fd
	e.ends[fd] = &tend{fd: fd, kind: tkListen}
	return nil
}

func (e *tunnelEngine) now() int64 { return int64(time.Since(e.base)) }

// put registers t under its descriptor.
func (e *tunnelEngine) put(t *tend) {
	for t.fd >= len(e.ends) {
		e.ends = append(e.ends, make([]*tend, len(e.ends))...)
	}
	e.ends[t.fd] = t
}

// roles sets what t does in the scenario's direction.
func (e *tunnelEngine) roles(t *tend) {
	client := t.kind == tkClient
	t.send = e.dir == dirBoth || (e.dir == dirUp) == client
	t.recv = e.dir == dirBoth || (e.dir == dirDown) == client
	t.active = e.flowing
}

// dial starts one tunnel; it reports false when that failed at once.
func (e *tunnelEngine) dial() bool {
	fd, op, err := e.d.Socket()
	if err != nil {
		e.count(loadgen.ErrKind(op, err))
		return false
	}
	_ = unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &e.lg)
	t := &tend{fd: fd, kind: tkClient, state: stConnecting, t0: e.now()}
	if op, err := e.d.Connect(fd, e.dst); err != nil {
		e.count(loadgen.ErrKind(op, err))
		return false
	}
	e.put(t)
	e.pending++
	return true
}

// count records a failure of kind.
func (e *tunnelEngine) count(kind string, _ bool) {
	e.failed++
	e.errs[kind]++
}

// closeEnd closes t's socket (with RST).
func (e *tunnelEngine) closeEnd(t *tend) {
	switch {
	case t.kind == tkClient && t.state == stOpen:
		e.clients--
	case t.kind == tkClient:
		e.pending--
	case t.kind == tkUp:
		e.ups--
	}
	if t.kind == tkUp {
		_ = unix.SetsockoptLinger(t.fd, unix.SOL_SOCKET, unix.SO_LINGER, &e.lg)
	}
	_ = unix.Close(t.fd)
	e.ends[t.fd] = nil
	t.fd = -1
}

// lost closes an endpoint that ended on its own or broke: a failed
// setup, or a lost tunnel unless ends are expected (the setups close
// theirs).
func (e *tunnelEngine) lost(t *tend, kind string) {
	switch {
	case t.state != stOpen:
		e.count(kind, false)
	case !e.expectEnds:
		e.lostN++
		e.errs["lost: "+kind]++
	}
	e.closeEnd(t)
}

// errKind names a socket error for the error counters.
func errKind(op string, err error) string {
	k, _ := loadgen.ErrKind(op, err)
	return k
}

// poll waits up to msec for events and handles them.
func (e *tunnelEngine) poll(msec int) error {
	evs, err := e.p.Wait(msec)
	if err != nil {
		return err
	}
	for i := range evs {
		if e.p.Timer(evs[i].Fd) {
			continue
		}
		if t := e.ends[evs[i].Fd]; t != nil {
			e.handle(t, evs[i].Events)
		}
	}
	return nil
}

func (e *tunnelEngine) handle(t *tend, ev uint32) {
	switch t.kind {
	case tkListen:
		e.accept()
		return
	case tkClient:
		if t.state == stConnecting {
			if ev&(unix.EPOLLERR|unix.EPOLLHUP) != 0 {
				errno, _ := unix.GetsockoptInt(t.fd, unix.SOL_SOCKET, unix.SO_ERROR)
				e.lost(t, errKind("connect", unix.Errno(errno)))
				return
			}
			if n, err := unix.Write(t.fd, e.req); err != nil || n != len(e.req) {
				e.lost(t, "connect: write failed")
				return
			}
			t.state = stWaiting
		}
	}
	if ev&unix.EPOLLOUT != 0 && t.send && t.active && !e.write(t) {
		return
	}
	if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		e.read(t)
	}
}

// accept takes every pending upstream connection.
func (e *tunnelEngine) accept() {
	for {
		fd, _, err := unix.Accept4(e.lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err == unix.EINTR || err == unix.ECONNABORTED {
			continue
		}
		if err != nil {
			if err != unix.EAGAIN {
				e.count(loadgen.ErrKind("accept", err))
			}
			return
		}
		t := &tend{fd: fd, kind: tkUp, state: stOpen}
		e.roles(t)
		if err := e.p.Add(fd); err != nil {
			_ = unix.Close(fd)
			e.count(loadgen.ErrKind("epoll", err))
			continue
		}
		e.put(t)
		e.ups++
		if t.send && t.active {
			e.write(t)
		}
	}
}

// write writes the stream until the socket is full; it reports whether t
// is still open.
func (e *tunnelEngine) write(t *tend) bool {
	for {
		n, err := unix.Write(t.fd, e.src[t.wOff:t.wOff+e.size])
		if err == unix.EAGAIN {
			return true
		}
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			e.lost(t, errKind("write", err))
			return false
		}
		t.wOff = (t.wOff + n) % patternLen
		if e.counting {
			e.sent += int64(n)
		}
	}
}

// read reads everything t has: the 101 of a client, then the stream.
func (e *tunnelEngine) read(t *tend) {
	for {
		var n int
		var err error
		if !e.verify && t.state == stOpen {
			// Discard in the kernel: no copy to user space.
			n, _, err = unix.Recvfrom(t.fd, e.rbuf, unix.MSG_TRUNC)
		} else {
			n, err = unix.Read(t.fd, e.rbuf)
		}
		if err == unix.EAGAIN {
			return
		}
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			e.lost(t, errKind("read", err))
			return
		}
		if n == 0 {
			e.lost(t, "read: eof")
			return
		}
		data := e.rbuf[:n]
		if t.state == stWaiting {
			if data = e.response(t, data); data == nil {
				return
			}
		}
		if len(data) > 0 && !e.consume(t, data) {
			return
		}
	}
}

// response adds data to t's response head; once the head is whole it
// checks it and returns what followed it (not nil), else nil.
func (e *tunnelEngine) response(t *tend, data []byte) []byte {
	from := max(len(t.head)-3, 0)
	t.head = append(t.head, data...)
	i := loadgen.HeadEnd(t.head[from:])
	if i < 0 {
		if len(t.head) > 16<<10 {
			e.lost(t, "response head too long")
		}
		return nil
	}
	end := from + i + 4
	head := t.head[:end]
	if why := checkTCPSwitch(head); why != "" {
		e.lost(t, why)
		return nil
	}
	if e.counting {
		e.setups++
		_ = e.hist.RecordValue(e.now() - t.t0)
	}
	rest := append([]byte{}, t.head[end:]...)
	t.head = nil
	t.state = stOpen
	e.pending--
	e.clients++
	e.roles(t)
	if t.send && t.active {
		if !e.write(t) {
			return nil
		}
	}
	return rest
}

// checkTCPSwitch checks a response head: 101 with Upgrade: tcp.
func checkTCPSwitch(head []byte) string {
	if why := loadgen.CheckResponse(head, nil); why != "" {
		return why
	}
	if v, ok := loadgen.Header(head, "upgrade"); !ok || !bytes.EqualFold(v, []byte("tcp")) {
		return "101 without Upgrade: tcp"
	}
	return ""
}

// consume counts and checks stream bytes t received; it reports whether
// t is still open.
func (e *tunnelEngine) consume(t *tend, data []byte) bool {
	if !t.recv {
		e.lost(t, "unexpected data")
		return false
	}
	if e.verify {
		for p := data; len(p) > 0; {
			m := min(len(p), tunnelReadBuf)
			if !bytes.Equal(p[:m], e.src[t.rOff:t.rOff+m]) {
				e.lost(t, "stream corrupted")
				return false
			}
			t.rOff = (t.rOff + m) % patternLen
			p = p[m:]
		}
	}
	if e.counting {
		e.received += int64(len(data))
	}
	return true
}

// expire fails the tunnels waiting for their 101 beyond the timeout.
func (e *tunnelEngine) expire() {
	if e.timeout <= 0 || e.pending == 0 {
		return
	}
	now := e.now()
	for _, t := range e.ends {
		if t != nil && t.kind == tkClient && t.state != stOpen && now-t.t0 > e.timeout {
			e.lost(t, "timeout")
		}
	}
}

// until polls until done reports true, failing after limit.
func (e *tunnelEngine) until(done func() bool, limit time.Duration, what string) error {
	deadline := e.now() + int64(limit)
	next := e.now() + tickEvery
	for !done() {
		now := e.now()
		if now > deadline {
			return fmt.Errorf("%s: not done after %v (failed %d, errors %v)", what, limit, e.failed, e.errs)
		}
		if err := e.poll(10); err != nil {
			return err
		}
		if now >= next {
			next = now + tickEvery
			e.expire()
		}
	}
	return nil
}

// start lets the data flow on every open endpoint.
func (e *tunnelEngine) start() {
	e.flowing = true
	for _, t := range e.ends {
		if t != nil && t.state == stOpen && t.kind != tkListen {
			t.active = true
			if t.send && !e.write(t) {
				continue
			}
		}
	}
}

// closeAll closes every socket but the listener.
func (e *tunnelEngine) closeAll() {
	for _, t := range e.ends {
		if t != nil && t.kind != tkListen {
			e.closeEnd(t)
		}
	}
}

// close closes every socket and the poller.
func (e *tunnelEngine) close() {
	e.closeAll()
	if e.lfd >= 0 {
		_ = unix.Close(e.lfd)
	}
	e.p.Close()
}
