//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"

	"github.com/upgate/upgate/parser"
)

// Bounds of the default Options.FDReserve: 1/32 of the descriptor limit,
// clamped to [minFDReserve, maxFDReserve].
const (
	minFDReserve = 64
	maxFDReserve = 4096
)

// fdReportEvery is the least time between two log lines about the
// descriptor guard.
const fdReportEvery = time.Second

// fdRefusal is the whole answer of a connection refused to keep the
// descriptors under the limit, written as gnet opens it.
var fdRefusal = parser.AppendError(nil, &parser.Error{Status: 503,
	Reason: "too many connections, try again later", Header: "Retry-After: 5\r\n"})

// FDLimit tells how a started server shares the process's file descriptors
// (see the package doc, File descriptors).
type FDLimit struct {
	// Limit is RLIMIT_NOFILE (the soft limit) when the server started; 0
	// when the guard is off (Options.FDReserve negative, or not Linux).
	Limit int
	// Reserve is Options.FDReserve, or its default for Limit.
	Reserve int
	// InUse counts the descriptors in use when the server started,
	// the engine's own included.
	InUse int
	// MaxConns is the most TCP connections the server holds:
	// Limit - Reserve - InUse. Connections beyond are answered 503.
	MaxConns int
	// Backlog and LowBacklog are the listen backlogs far from and near
	// MaxConns; both 0 when the backlog is left alone (ReusePort).
	Backlog, LowBacklog int
}

// fdGuard keeps the process's descriptors under RLIMIT_NOFILE. OnOpen reads
// max, near and restore without locking: they are set in OnBoot, before
// the loops start, and never change.
type fdGuard struct {
	FDLimit
	max     int64 // MaxConns; MaxInt64 when the guard is off
	near    int64 // open connections from which the backlog is lowered
	restore int64 // open connections below which it is raised again
	fds     []int // duplicates of the listeners; nil when the backlogs are not tuned

	// pauseAt and resumeAt bound the pause of the listener: from pauseAt
	// open connections it takes no new ones, below resumeAt again.
	pauseAt, resumeAt int64

	mu      sync.Mutex // serialises backlog changes and pauses
	lowered atomic.Bool
	paused  atomic.Bool
	// shedUntil is when connections accepted after the last resume stop
	// being checked for an inherited filter (nanoseconds since start), 0
	// once passed; see shed.
	shedUntil atomic.Int64
	start     time.Time     // the server's start, for shedUntil
	pauses    atomic.Uint64 // times the listener was paused
	tuneErr   atomic.Pointer[error]

	// Reports, on gnet's ticker goroutine.
	lastReport time.Time
	reported   uint64 // refusals counted at the last report
	reportLow  bool   // lowered at the last report
	reportStop bool   // paused at the last report

	// rlimit is RLIMIT_NOFILE at boot, known even with the guard off;
	// stopFDs counts the descriptors in use when the engine began to stop
	// (OnShutdown), -1 when unknown. Both tell why an engine stopped.
	rlimit, stopFDs int
}

// defaultFDReserve is the reserve of Options.FDReserve zero: 1/32 of limit,
// at least minFDReserve and at most maxFDReserve. For 1,048,576 descriptors
// that is 4096; for 20,000, 625 (about 19,300 connections fit); for 2048
// and below, 64.
func defaultFDReserve(limit int) int {
	return min(max(limit/32, minFDReserve), maxFDReserve)
}

// engineFDs estimates the descriptors gnet opens after OnBoot: on Linux,
// an epoll instance and an eventfd per poller, one poller per loop plus
// the acceptor's, or with ReusePort no acceptor but each listener again per
// loop after the first. This is read from gnet's source, not promised by its
// API; an error of a few descriptors falls in the reserve.
func engineFDs(o Options, nloops, nlisteners int) int {
	if o.ReusePort {
		return 2*nloops + nlisteners*(nloops-1)
	}
	return 2 * (nloops + 1)
}

// off turns the guard off.
func (g *fdGuard) off() {
	g.FDLimit = FDLimit{}
	g.max, g.near, g.restore, g.fds = math.MaxInt64, math.MaxInt64, math.MinInt64, nil
	g.pauseAt, g.resumeAt = math.MaxInt64, math.MinInt64
	g.rlimit, g.stopFDs = 0, -1
}

// boot sets the guard up in OnBoot, given a duplicate of each listener: it
// keeps lns for tuning the backlogs (and reports whether it did) or leaves
// them to the caller. Both listeners of a server with two are tuned and
// paused together: the connections they bring count against one limit.
func (g *fdGuard) boot(s *Server, lns []int) (kept bool, err error) {
	g.off()
	g.start = s.start
	o := s.opts
	var rl unix.Rlimit
	if !fdGuardSupported || unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) != nil {
		return false, nil
	}
	// Clamped to fit an int on 32-bit systems too (RLIM_INFINITY).
	limit := int(min(rl.Cur, math.MaxInt32))
	g.rlimit = limit
	inUse, err := countFDs()
	if err != nil || o.FDReserve < 0 {
		return false, nil
	}
	inUse += engineFDs(o, s.nloops, len(lns))
	reserve := o.FDReserve
	if reserve == 0 {
		reserve = defaultFDReserve(limit)
	}
	maxConns := limit - reserve - inUse
	if maxConns < 1 {
		return false, fmt.Errorf("%w: %d descriptors, %d in use and %d kept in reserve leave none for connections",
			ErrFDLimit, limit, inUse, reserve)
	}
	g.FDLimit = FDLimit{Limit: limit, Reserve: reserve, InUse: inUse, MaxConns: maxConns}
	g.max = int64(maxConns)
	if o.ReusePort {
		// Engine.Dup reaches only the first loop's listener: leave the
		// backlogs alone (see the package doc).
		return false, nil
	}
	high, low := maxBacklog(), max(reserve/4, 1)
	if low >= high {
		return false, nil
	}
	g.Backlog, g.LowBacklog = high, low
	g.fds = lns
	// A burst of accepts takes at most a full backlog (and what arrives
	// meanwhile): lower it while open connections are within one backlog
	// of the most, raise it again a quarter of a backlog lower.
	g.near = int64(maxConns - high)
	g.restore = g.near - int64(high/4)
	// gnet's acceptor runs apart from the loops and accepts until EAGAIN,
	// so under a flood it takes connections faster than the loops can
	// refuse them, however short the backlog: the accept queue refills as
	// fast as clients connect. A quarter of the reserve before the most,
	// the listener is paused instead, as HAProxy pauses at maxconn: a
	// socket filter that drops every packet (SO_ATTACH_FILTER, socket(7))
	// makes the kernel drop new SYNs, which clients retry, and the
	// acceptor runs dry after the connections already queued. It resumes
	// (SO_DETACH_FILTER) a further quarter of the reserve below.
	step := int64(max(reserve/4, 1))
	g.pauseAt = max(int64(maxConns)-step, 1)
	g.resumeAt = g.pauseAt - step
	if g.near <= 0 {
		for _, fd := range lns {
			if err := setBacklog(fd, low); err != nil {
				g.fds = nil
				return false, fmt.Errorf("loop: lowering the listen backlog: %w", err)
			}
		}
		g.lowered.Store(true)
		g.reportLow = true
	}
	return true, nil
}

// watch is called by OnOpen with the open connections, this one included:
// it lowers or raises the listen backlog when n crosses a threshold. Any
// loop goroutine; a load and two compares unless a threshold is crossed.
func (g *fdGuard) watch(n int64) {
	if low := g.lowered.Load(); low && n < g.restore || !low && n >= g.near {
		g.adjust(n)
	}
	if p := g.paused.Load(); p && n < g.resumeAt || !p && n >= g.pauseAt {
		g.pause(n)
	}
}

// pause pauses or resumes the listener, once per crossing.
func (g *fdGuard) pause(n int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var err error
	switch p := g.paused.Load(); {
	case !p && n >= g.pauseAt:
		err = g.each(pauseListener)
		g.pauses.Add(1)
	case p && n < g.resumeAt:
		err = g.each(resumeListener)
		g.shedUntil.Store(int64(time.Since(g.start) + shedWindow))
	default:
		return
	}
	if err != nil {
		g.tuneErr.Store(&err)
	}
	g.paused.Store(!g.paused.Load())
}

// adjust changes the backlog, once per crossing however many loops see it.
func (g *fdGuard) adjust(n int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	low := g.lowered.Load()
	b := g.Backlog
	switch {
	case !low && n >= g.near:
		b = g.LowBacklog
	case low && n < g.restore:
	default:
		return
	}
	// listen(2) on a listening socket only sets its backlog (Linux).
	if err := g.each(func(fd int) error { return setBacklog(fd, b) }); err != nil {
		g.tuneErr.Store(&err)
	}
	g.lowered.Store(!low)
}

// shedWindow is how long after a resume accepted connections are still
// checked for an inherited filter: those created during the pause wait in
// the accept queue until the acceptor reaches them, which under a flood
// may take a while.
const shedWindow = 10 * time.Second

// shed detaches the listener's pause filter from an accepted connection
// that may have inherited it: while the listener is paused or within
// shedWindow of its resume. A connection created in the instant dropAll
// was attached (its handshake's last ACK passed the listener's filter just
// before) gets a copy of it, and would never receive a byte: its head
// would be answered 408. One setsockopt(2) per connection, only then.
// Loop goroutine (OnOpen).
func (g *fdGuard) shed(fd int) {
	if !g.paused.Load() {
		until := g.shedUntil.Load()
		if until == 0 {
			return // the common case: two atomic loads
		}
		if int64(time.Since(g.start)) >= until {
			g.shedUntil.CompareAndSwap(until, 0)
			return
		}
	}
	if err := shedFilter(fd); err != nil {
		g.tuneErr.Store(&err)
	}
}

// each applies f to every listener, and returns the first error.
func (g *fdGuard) each(f func(fd int) error) error {
	var first error
	for _, fd := range g.fds {
		if err := f(fd); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// close releases the listeners' duplicates once the engine stopped.
func (g *fdGuard) close() {
	closeAll(g.fds)
	g.fds = nil
}

// refuseFD answers a connection over FDLimit.MaxConns 503 and closes it;
// one of the TLS listener (secure) is closed without a word, no plaintext
// answer being readable to a TLS client. Loop goroutine.
func (l *evloop) refuseFD(secure bool) ([]byte, gnet.Action) {
	l.stats.FDRefused.Add(1)
	if secure {
		return nil, gnet.Close
	}
	l.stats.reject(503)
	return fdRefusal, gnet.Close
}

// fdReport logs what the guard did since the last report, at most once per
// fdReportEvery. gnet's ticker goroutine.
func (s *Server) fdReport() {
	g := &s.fd
	if g.Limit == 0 {
		return
	}
	now := time.Now()
	if now.Sub(g.lastReport) < fdReportEvery {
		return
	}
	var refused uint64
	for _, l := range *s.loops.Load() {
		refused += l.stats.FDRefused.Load()
	}
	low, paused := g.lowered.Load(), g.paused.Load()
	if refused == g.reported && low == g.reportLow && paused == g.reportStop {
		return
	}
	backlog := g.Backlog
	if low {
		backlog = g.LowBacklog
	}
	var msg string
	if n := refused - g.reported; n > 0 {
		msg = fmt.Sprintf("loop: %d connections refused (503) since the last report to keep file descriptors under the limit: "+
			"%d open, at most %d (limit %d, reserve %d, %d other descriptors)",
			n, s.open.Load(), g.MaxConns, g.Limit, g.Reserve, g.InUse)
		if backlog > 0 {
			msg += fmt.Sprintf(", listen backlog %d", backlog)
		}
	} else if low {
		msg = fmt.Sprintf("loop: %d connections open, near the %d the file descriptor limit allows: listen backlog lowered to %d",
			s.open.Load(), g.MaxConns, backlog)
	} else {
		msg = fmt.Sprintf("loop: %d connections open: listen backlog back to %d", s.open.Load(), backlog)
	}
	switch {
	case paused:
		msg += fmt.Sprintf("; the listener is paused (new connections wait in the clients' SYN retries) until fewer than %d are open", g.resumeAt)
	case g.reportStop:
		msg += "; the listener takes new connections again"
	}
	if p := g.tuneErr.Swap(nil); p != nil {
		msg += fmt.Sprintf(" (setting it failed: %v)", *p)
	}
	s.opts.Logger.Warnf("%s", msg)
	g.lastReport, g.reported, g.reportLow, g.reportStop = now, refused, low, paused
}

// noteStop counts the descriptors in use as the engine begins to stop
// (OnShutdown), for stoppedErr.
func (g *fdGuard) noteStop() {
	if g.rlimit > 0 {
		n, err := countFDs()
		switch {
		case err == nil:
			g.stopFDs = n
		case errors.Is(err, unix.EMFILE):
			g.stopFDs = g.rlimit // not even one left to count them
		}
	}
}

// stoppedErr is why the engine stopped without Shutdown, as far as the
// server can tell: gnet's Run returns nil whatever stopped it.
func (s *Server) stoppedErr() error {
	g := &s.fd
	if n := g.stopFDs; g.rlimit > 0 && n >= 0 && g.rlimit-n <= max(16, g.rlimit/100) {
		return fmt.Errorf("%w: %d of %d file descriptors were in use, and gnet stops when an accept fails for want of one",
			ErrEngineStopped, n, g.rlimit)
	}
	return fmt.Errorf("%w (the engine's log tells why)", ErrEngineStopped)
}

// Errors of the file descriptor guard and of an engine that stops by itself.
var (
	// ErrFDLimit is returned by Start when RLIMIT_NOFILE leaves no
	// descriptor for connections after Options.FDReserve.
	ErrFDLimit = errors.New("loop: file descriptor limit too low")
	// ErrEngineStopped is what Server.Err returns once the engine stopped
	// without Shutdown, as it does after an accept fails with anything but
	// EAGAIN, EINTR, ECONNRESET or ECONNABORTED: EMFILE when another part
	// of the process took the descriptors the guard kept, ENFILE, ENOBUFS,
	// ENOMEM.
	ErrEngineStopped = errors.New("loop: engine stopped without Shutdown")
)
