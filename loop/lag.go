//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"time"
)

// lagBounds are the upper bounds of the loop-lag histogram's buckets.
var lagBounds = [...]time.Duration{
	time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond,
	25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond,
	250 * time.Millisecond, 500 * time.Millisecond, time.Second,
	2500 * time.Millisecond, 5 * time.Second, 10 * time.Second,
}

// lagWarn is the lag past which a loop logs that it fell behind, and
// lagLogEvery the least time between two such lines of one loop.
const (
	lagWarn     = time.Second
	lagLogEvery = 10 * time.Second
)

// LagHistogram is how late an event loop ran the work handed to it: its
// timer ticks (from the moment the ticker queued one) and the tasks given
// to Server.Execute (from the call). A loop that only waits for input has
// lags of microseconds; a loop kept busy by its work, or starved of CPU,
// shows it here first.
type LagHistogram struct {
	// Bounds are the buckets' upper bounds, in increasing order; Counts
	// holds, for each, the number of lags at most that long (cumulative,
	// as Prometheus counts), and Count all of them, the last bucket
	// (+Inf) included.
	Bounds []time.Duration
	Counts []uint64
	Count  uint64
	// Sum is the total of the lags.
	Sum time.Duration
}

// LoopLag returns the lag histogram of the event loop with the given index
// (a Conn.LoopIndex); false when that loop has not started yet. Any
// goroutine; it allocates the histogram, which is the caller's.
func (s *Server) LoopLag(loop int) (LagHistogram, bool) {
	loops := *s.loops.Load()
	if loop < 0 || loop >= len(loops) {
		return LagHistogram{}, false
	}
	if !loops[loop].bound.Load() {
		return LagHistogram{}, false
	}
	st := &loops[loop].stats
	h := LagHistogram{
		Bounds: append([]time.Duration(nil), lagBounds[:]...),
		Counts: make([]uint64, len(lagBounds)),
		Sum:    time.Duration(st.lagSum.Load()),
	}
	var n uint64
	for i := range lagBounds {
		n += st.lag[i].Load()
		h.Counts[i] = n
	}
	h.Count = n + st.lag[len(lagBounds)].Load()
	return h, true
}

// since returns the time since the server started, the clock of every
// timestamp a loop keeps.
func (s *Server) since() int64 { return int64(time.Since(s.start)) }

// recordLag counts that work queued at queued (Server.since) runs now, and
// logs when the loop is more than lagWarn behind (at most once every
// lagLogEvery). Loop goroutine.
func (l *evloop) recordLag(queued int64) {
	now := l.srv.since()
	d := time.Duration(now - queued)
	if d < 0 {
		d = 0
	}
	i := 0
	for i < len(lagBounds) && d > lagBounds[i] {
		i++
	}
	l.stats.lag[i].Add(1)
	l.stats.lagSum.Add(int64(d))
	if d > lagWarn && (l.lagLogged == 0 || time.Duration(now-l.lagLogged) >= lagLogEvery) {
		l.lagLogged = now
		l.srv.opts.Logger.Warnf("loop: event loop %d is %.1fs behind: work queued to it waits that long (CPU starved, or too much work per loop)", l.idx, d.Seconds())
	}
}
