//go:build linux

package tunnel

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/upgate/upgate/loop/frame"
)

// Reactor runs tunnels on a fixed set of epoll goroutines. Its methods may
// be called from any goroutine.
type Reactor struct {
	opts  Options
	loops []*loop
	next  atomic.Uint32 // round robin over loops
	ids   atomic.Uint64
	wg    sync.WaitGroup
	bufs  sync.Pool // *wsBuf, WebSocket mode

	mu      sync.Mutex
	tunnels map[uint64]*Tunnel // for Len and Each
}

// loop is one epoll goroutine and the tunnels it runs. Fields below mu are
// owned by the loop's goroutine.
type loop struct {
	r    *Reactor
	epfd int
	evfd int

	mu       sync.Mutex
	queue    []command
	spare    []command // the previous queue, reused
	stopping bool      // Shutdown was called: refuse new tunnels

	byFD     map[int32]*Tunnel
	list     []*Tunnel // every tunnel, for timers; Tunnel.idx is its index
	pipes    []pipe    // idle pipes, at most maxPipes
	maxPipes int
	events   [128]unix.EpollEvent
	evbuf    [8]byte
	start    time.Time
	now      int64 // nanoseconds since start, updated after each wait
	lastTick int64
	tick     int64
	shutdown bool // stop once every tunnel ended
}

// commandKind says what a command asks of a loop.
type commandKind uint8

const (
	cmdAdd      commandKind = iota // run a new tunnel
	cmdClose                       // Tunnel.Close
	cmdShutdown                    // close every tunnel, then stop
	cmdForce                       // end every tunnel now (Shutdown's context expired)
)

// command is a request to a loop from another goroutine.
type command struct {
	kind commandKind
	t    *Tunnel
}

// New starts a Reactor with o's goroutines. Stop it with Shutdown.
func New(o Options) (*Reactor, error) {
	o, err := o.normalize()
	if err != nil {
		return nil, err
	}
	r := &Reactor{opts: o, tunnels: make(map[uint64]*Tunnel)}
	size := o.BufferSize + frame.MaxServerHeaderLen
	r.bufs.New = func() any { return &wsBuf{b: make([]byte, size)} }
	perLoop := max(1, (o.MaxPipes+o.Reactors-1)/o.Reactors)
	for range o.Reactors {
		l, err := newLoop(r, perLoop)
		if err != nil {
			for _, l := range r.loops {
				l.closeFDs()
			}
			return nil, err
		}
		r.loops = append(r.loops, l)
	}
	for _, l := range r.loops {
		r.wg.Add(1)
		go l.run()
	}
	return r, nil
}

// newLoop creates a loop's epoll and eventfd descriptors.
func newLoop(r *Reactor, maxPipes int) (*loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("tunnel: epoll_create1: %w", err)
	}
	evfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("tunnel: eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(evfd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(evfd)
		return nil, fmt.Errorf("tunnel: epoll_ctl: %w", err)
	}
	return &loop{
		r: r, epfd: epfd, evfd: evfd,
		byFD:     make(map[int32]*Tunnel),
		maxPipes: maxPipes,
		start:    time.Now(),
		tick:     int64(r.opts.tick()),
	}, nil
}

// Splice starts a tunnel between the connected, stream sockets a and b and
// returns it. It may be called from any goroutine.
//
// On success the tunnel owns a and b: it makes them non-blocking and closes
// them when it ends, and onEnd (if not nil) then runs once, on the reactor's
// goroutine, with nil after a clean end of both directions or the reason
// otherwise. On error the caller keeps a and b.
//
// prefix holds bytes already read from A that belong to the stream; they
// reach B before anything else (in WebSocket mode they are decoded as frames
// first). Splice copies prefix.
func (r *Reactor) Splice(a, b int, prefix []byte, mode Mode, onEnd func(t *Tunnel, err error)) (*Tunnel, error) {
	if mode != Raw && mode != WebSocket {
		return nil, ErrMode
	}
	for _, fd := range [2]int{a, b} {
		typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
		if err != nil {
			return nil, fmt.Errorf("tunnel: fd %d: %w", fd, err)
		}
		if typ != unix.SOCK_STREAM {
			return nil, fmt.Errorf("tunnel: fd %d is not a stream socket", fd)
		}
	}
	if a == b {
		return nil, errors.New("tunnel: both sides are the same fd")
	}
	for _, fd := range [2]int{a, b} {
		if err := unix.SetNonblock(fd, true); err != nil {
			return nil, fmt.Errorf("tunnel: fd %d: %w", fd, err)
		}
	}
	l := r.loops[int(r.next.Add(1)-1)%len(r.loops)]
	t := &Tunnel{
		id: r.ids.Add(1), a: a, b: b, mode: mode, opened: time.Now(),
		loop: l, onEnd: onEnd, idx: -1,
	}
	if len(prefix) > 0 {
		t.prefix = append([]byte(nil), prefix...)
	}
	l.mu.Lock()
	if l.stopping {
		l.mu.Unlock()
		return nil, ErrClosed
	}
	r.mu.Lock()
	r.tunnels[t.id] = t
	r.mu.Unlock()
	l.queue = append(l.queue, command{kind: cmdAdd, t: t})
	l.mu.Unlock()
	l.wake()
	return t, nil
}

// Len returns the number of tunnels running. It may be called from any
// goroutine.
func (r *Reactor) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.tunnels)
}

// Each calls fn for each running tunnel, in no particular order, until fn
// returns false. It may be called from any goroutine, fn included; a
// tunnel started or ended meanwhile may or may not be seen.
func (r *Reactor) Each(fn func(*Tunnel) bool) {
	r.mu.Lock()
	ts := make([]*Tunnel, 0, len(r.tunnels))
	for _, t := range r.tunnels {
		ts = append(ts, t)
	}
	r.mu.Unlock()
	for _, t := range ts {
		if !fn(t) {
			return
		}
	}
}

// Shutdown refuses new tunnels, closes every tunnel (in WebSocket mode with
// a close frame 1001 first) and stops the reactor's goroutines. It returns
// once every onEnd has run. If ctx ends first, the remaining tunnels are
// ended at once, without waiting for their close frames, and Shutdown
// returns ctx's error once their onEnd ran. It may be called from any
// goroutine but onEnd, more than once.
func (r *Reactor) Shutdown(ctx context.Context) error {
	for _, l := range r.loops {
		l.send(command{kind: cmdShutdown})
	}
	done := make(chan struct{})
	go func() {
		r.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	for _, l := range r.loops {
		l.send(command{kind: cmdForce})
	}
	<-done
	return ctx.Err()
}

// send queues c for the loop and wakes it. A shutdown stops new tunnels.
func (l *loop) send(c command) {
	l.mu.Lock()
	if c.kind == cmdShutdown {
		l.stopping = true
	}
	l.queue = append(l.queue, c)
	l.mu.Unlock()
	l.wake()
}

// wake makes the loop's epoll_wait return.
func (l *loop) wake() {
	one := [8]byte{1}
	for {
		_, err := unix.Write(l.evfd, one[:])
		if err != unix.EINTR {
			return // EAGAIN: the counter is already non-zero
		}
	}
}

// run is the loop's goroutine.
func (l *loop) run() {
	defer l.r.wg.Done()
	defer l.closeFDs()
	for {
		timeout := -1
		if len(l.list) > 0 {
			timeout = int(max(l.tick/int64(time.Millisecond), 1))
		}
		n, err := unix.EpollWait(l.epfd, l.events[:], timeout)
		if err != nil && err != unix.EINTR {
			// Only a broken epfd fails here: end everything.
			l.endAll(fmt.Errorf("tunnel: epoll_wait: %w", err))
			return
		}
		l.now = int64(time.Since(l.start))
		for i := range n {
			ev := &l.events[i]
			if int(ev.Fd) == l.evfd {
				l.commands()
				continue
			}
			if t := l.byFD[ev.Fd]; t != nil {
				t.handle(int(ev.Fd), ev.Events)
			}
		}
		if l.now-l.lastTick >= l.tick {
			l.lastTick = l.now
			l.timers()
		}
		if l.shutdown && len(l.list) == 0 {
			return
		}
	}
}

// commands runs the commands queued by other goroutines.
func (l *loop) commands() {
	for {
		_, err := unix.Read(l.evfd, l.evbuf[:])
		if err != unix.EINTR {
			break
		}
	}
	l.mu.Lock()
	q := l.queue
	l.queue = l.spare[:0]
	l.mu.Unlock()
	for i, c := range q {
		switch c.kind {
		case cmdAdd:
			l.add(c.t)
		case cmdClose:
			if c.t.idx >= 0 {
				c.t.stop(ErrClosed)
			}
		case cmdShutdown:
			l.shutdown = true
			for _, t := range l.snapshot() {
				t.stop(ErrShutdown)
			}
		case cmdForce:
			l.shutdown = true
			l.endAll(ErrShutdown)
		}
		q[i] = command{}
	}
	l.mu.Lock()
	l.spare = q[:0]
	l.mu.Unlock()
}

// snapshot returns a copy of the loop's tunnels, for iterations during which
// tunnels may end.
func (l *loop) snapshot() []*Tunnel {
	return append([]*Tunnel(nil), l.list...)
}

// endAll ends every tunnel of the loop with err.
func (l *loop) endAll(err error) {
	for _, t := range l.snapshot() {
		t.end(err)
	}
}

// add starts running t on the loop.
func (l *loop) add(t *Tunnel) {
	t.idx = len(l.list)
	l.list = append(l.list, t)
	l.byFD[int32(t.a)] = t
	l.byFD[int32(t.b)] = t
	t.active = l.now
	if l.shutdown {
		t.stop(ErrShutdown)
		return
	}
	t.start()
}

// timers ends the tunnels whose idle or drain time is up.
func (l *loop) timers() {
	idle := int64(l.r.opts.IdleTimeout)
	for i := 0; i < len(l.list); {
		t := l.list[i]
		switch {
		case t.deadline != 0 && l.now >= t.deadline:
			t.end(ErrDrainTimeout)
		case idle > 0 && !t.stopping && l.now-t.active >= idle:
			t.stop(ErrIdleTimeout)
		}
		if i < len(l.list) && l.list[i] == t {
			i++
		}
	}
}

// remove forgets t, which has ended.
func (l *loop) remove(t *Tunnel) {
	last := len(l.list) - 1
	l.list[t.idx] = l.list[last]
	l.list[t.idx].idx = t.idx
	l.list[last] = nil
	l.list = l.list[:last]
	t.idx = -1
	delete(l.byFD, int32(t.a))
	delete(l.byFD, int32(t.b))
	l.r.mu.Lock()
	delete(l.r.tunnels, t.id)
	l.r.mu.Unlock()
}

// setInterest makes the epoll set watch events on fd, cur being what it
// watches now (0: fd is not in the set). A socket with nothing to watch
// leaves the set, so that EPOLLHUP or EPOLLERR cannot report it over and
// over while the tunnel waits on the other socket.
func (l *loop) setInterest(fd int, cur *uint32, want uint32) error {
	if *cur == want {
		return nil
	}
	ev := unix.EpollEvent{Events: want, Fd: int32(fd)}
	var op int
	switch {
	case *cur == 0:
		op = unix.EPOLL_CTL_ADD
	case want == 0:
		op = unix.EPOLL_CTL_DEL
	default:
		op = unix.EPOLL_CTL_MOD
	}
	if err := unix.EpollCtl(l.epfd, op, fd, &ev); err != nil {
		return fmt.Errorf("tunnel: epoll_ctl: %w", err)
	}
	*cur = want
	return nil
}

// closeFDs releases the loop's descriptors and pooled pipes.
func (l *loop) closeFDs() {
	for _, p := range l.pipes {
		p.close()
	}
	l.pipes = nil
	unix.Close(l.epfd)
	unix.Close(l.evfd)
}

// wsBuf is a pooled buffer of a WebSocket-mode direction.
type wsBuf struct{ b []byte }
