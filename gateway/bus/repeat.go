package bus

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// DefaultLogInterval is how often a repeated warning of the bus is
// summarised (Options.LogInterval, ServerOptions.LogInterval).
const DefaultLogInterval = 30 * time.Second

// Bounds of the repeat handler: warnings of at most maxRepeatKinds kinds
// are told apart, the others share one summary; a kind is its message
// with digits masked, cut to maxRepeatKey bytes.
const (
	maxRepeatKinds = 64
	maxRepeatKey   = 256
)

// repeatHandler is a slog.Handler that logs a warning (or an error) the
// first time it is seen, then only counts its repeats and logs, at most once
// per interval, one summary ("... (repeated 119 times in the last 30s)")
// carrying the attributes of the latest repeat. A kind with no repeat for a
// whole interval is forgotten: its next occurrence is logged at once.
// Records below warning level pass through. So a peer that stays down costs
// a few lines per interval, however fast its errors come.
type repeatHandler struct {
	inner slog.Handler
	st    *repeatState
}

// repeatState is shared by a repeatHandler and those derived from it.
type repeatState struct {
	every time.Duration
	now   func() time.Time

	mu     sync.Mutex
	kinds  map[string]*repeatKind
	timer  *time.Timer
	closed bool
}

// repeatKind counts the repeats of one kind of warning since its last line.
type repeatKind struct {
	since time.Time    // when its last line was logged
	n     int          // repeats since
	last  slog.Record  // the latest repeat
	h     slog.Handler // the handler the latest repeat came through
}

// overflowKey is the kind of warnings beyond maxRepeatKinds kinds.
const overflowKey = "\x00other"

// newRepeatLogger returns a logger that writes to l's handler through a
// repeatHandler with the given interval (DefaultLogInterval if zero or
// negative), and the state to reset or close it with.
func newRepeatLogger(l *slog.Logger, every time.Duration) (*slog.Logger, *repeatState) {
	if every <= 0 {
		every = DefaultLogInterval
	}
	st := &repeatState{every: every, now: time.Now, kinds: map[string]*repeatKind{}}
	return slog.New(&repeatHandler{inner: l.Handler(), st: st}), st
}

func (h *repeatHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.inner.Enabled(ctx, level)
}

func (h *repeatHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &repeatHandler{inner: h.inner.WithAttrs(attrs), st: h.st}
}

func (h *repeatHandler) WithGroup(name string) slog.Handler {
	return &repeatHandler{inner: h.inner.WithGroup(name), st: h.st}
}

func (h *repeatHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn || !h.st.count(h.inner, r) {
		return h.inner.Handle(ctx, r)
	}
	return nil
}

// count records a warning; it reports whether the warning is a repeat that
// must not be logged now.
func (st *repeatState) count(h slog.Handler, r slog.Record) bool {
	key := repeatKey(r.Message)
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.closed {
		return false
	}
	k := st.kinds[key]
	if k == nil && len(st.kinds) >= maxRepeatKinds {
		key = overflowKey
		k = st.kinds[key]
	}
	if k == nil {
		st.kinds[key] = &repeatKind{since: st.now()}
		if st.timer == nil {
			st.timer = time.AfterFunc(st.every, st.tick)
		}
		return false
	}
	k.n++
	k.last, k.h = r.Clone(), h
	return true
}

// tick logs the summaries of the kinds whose interval is over and forgets
// the kinds that did not repeat during theirs.
func (st *repeatState) tick() {
	st.mu.Lock()
	if st.closed {
		st.mu.Unlock()
		return
	}
	now := st.now()
	var out []pending
	next := st.every
	for key, k := range st.kinds {
		left := st.every - now.Sub(k.since)
		switch {
		case left > 0:
			next = min(next, left)
		case k.n > 0:
			out = append(out, st.summary(key, k, now))
			k.since, k.n, k.last, k.h = now, 0, slog.Record{}, nil
		default:
			delete(st.kinds, key)
		}
	}
	if len(st.kinds) > 0 {
		st.timer.Reset(next)
	} else {
		st.timer = nil
	}
	st.mu.Unlock()
	emit(out)
}

// reset logs the summaries of every pending repeat and forgets every
// kind, so that the next warning of any kind is logged at once: the
// trouble they told of is over.
func (st *repeatState) reset() {
	st.mu.Lock()
	out := st.drain()
	st.mu.Unlock()
	emit(out)
}

// close is reset, after which warnings pass through unaggregated.
func (st *repeatState) close() {
	st.mu.Lock()
	out := st.drain()
	st.closed = true
	st.mu.Unlock()
	emit(out)
}

// drain returns the pending summaries and forgets every kind. st.mu is
// held.
func (st *repeatState) drain() []pending {
	now := st.now()
	var out []pending
	for key, k := range st.kinds {
		if k.n > 0 {
			out = append(out, st.summary(key, k, now))
		}
	}
	clear(st.kinds)
	if st.timer != nil {
		st.timer.Stop()
		st.timer = nil
	}
	return out
}

// pending is a summary to log once st.mu is released.
type pending struct {
	h slog.Handler
	r slog.Record
}

func emit(out []pending) {
	for _, p := range out {
		_ = p.h.Handle(context.Background(), p.r)
	}
}

// summary builds the line that stands for k's repeats since k.since.
func (st *repeatState) summary(key string, k *repeatKind, now time.Time) pending {
	window := now.Sub(k.since)
	if window >= time.Second {
		window = window.Round(time.Second)
	} else {
		window = window.Round(time.Millisecond)
	}
	msg := fmt.Sprintf("%s (repeated %d times in the last %s)", k.last.Message, k.n, window)
	if key == overflowKey {
		msg = fmt.Sprintf("%d more warnings of other kinds in the last %s, the latest: %s", k.n, window, k.last.Message)
	}
	r := slog.NewRecord(now, k.last.Level, msg, 0)
	k.last.Attrs(func(a slog.Attr) bool {
		r.AddAttrs(a)
		return true
	})
	r.AddAttrs(slog.Int("repeated", k.n))
	return pending{h: k.h, r: r}
}

// repeatKey is the kind of a message: the message with every run of
// digits masked (attempt counts, ports, ids), cut to maxRepeatKey bytes.
func repeatKey(msg string) string {
	b := make([]byte, 0, min(len(msg), maxRepeatKey))
	for i := 0; i < len(msg) && len(b) < maxRepeatKey; i++ {
		c := msg[i]
		if c >= '0' && c <= '9' {
			if len(b) > 0 && b[len(b)-1] == '#' {
				continue
			}
			c = '#'
		}
		b = append(b, c)
	}
	return string(b)
}
