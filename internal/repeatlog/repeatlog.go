// Package repeatlog keeps a flood of warnings of one kind (a peer that
// stays down, retried every second) down to a few lines: the first is
// logged, its repeats are summarised once per interval.
package repeatlog

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// DefaultInterval is how often a repeated warning is summarised.
const DefaultInterval = 30 * time.Second

// Bounds of the repeat handler: warnings of at most maxKinds kinds
// are told apart, the others share one summary; a kind is its message
// with digits masked, cut to maxKey bytes.
const (
	maxKinds = 64
	maxKey   = 256
)

// handler is a slog.Handler that logs a warning (or an error) the
// first time it is seen, then only counts its repeats and logs, at most once
// per interval, one summary ("... (repeated 119 times in the last 30s)")
// carrying the attributes of the latest repeat. A kind with no repeat for a
// whole interval is forgotten: its next occurrence is logged at once.
// Records below warning level pass through. So a peer that stays down costs
// a few lines per interval, however fast its errors come.
type handler struct {
	inner slog.Handler
	st    *State
}

// State is what a repeat logger remembers of the warnings it saw, shared
// by its handler and the handlers derived from it (With, WithGroup).
type State struct {
	every time.Duration
	now   func() time.Time

	mu     sync.Mutex
	kinds  map[string]*kind
	timer  *time.Timer
	closed bool
}

// kind counts the repeats of one kind of warning since its last line.
type kind struct {
	since time.Time    // when its last line was logged
	n     int          // repeats since
	last  slog.Record  // the latest repeat
	h     slog.Handler // the handler the latest repeat came through
}

// overflowKey is the kind of warnings beyond maxKinds kinds.
const overflowKey = "\x00other"

// New returns a logger that writes to l's handler through a handler with
// the given interval (DefaultInterval if zero or negative), and the state
// to reset or close it with.
func New(l *slog.Logger, every time.Duration) (*slog.Logger, *State) {
	if every <= 0 {
		every = DefaultInterval
	}
	st := &State{every: every, now: time.Now, kinds: map[string]*kind{}}
	return slog.New(&handler{inner: l.Handler(), st: st}), st
}

func (h *handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.inner.Enabled(ctx, level)
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &handler{inner: h.inner.WithAttrs(attrs), st: h.st}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{inner: h.inner.WithGroup(name), st: h.st}
}

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn || !h.st.count(h.inner, r) {
		return h.inner.Handle(ctx, r)
	}
	return nil
}

// count records a warning; it reports whether the warning is a repeat that
// must not be logged now.
func (st *State) count(h slog.Handler, r slog.Record) bool {
	key := keyOf(r.Message)
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.closed {
		return false
	}
	k := st.kinds[key]
	if k == nil && len(st.kinds) >= maxKinds {
		key = overflowKey
		k = st.kinds[key]
	}
	if k == nil {
		st.kinds[key] = &kind{since: st.now()}
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
func (st *State) tick() {
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

// Reset logs the summaries of every pending repeat and forgets every
// kind, so that the next warning of any kind is logged at once: the
// trouble they told of is over. Any goroutine.
func (st *State) Reset() {
	st.mu.Lock()
	out := st.drain()
	st.mu.Unlock()
	emit(out)
}

// Close is Reset, after which warnings pass through unaggregated. Any
// goroutine.
func (st *State) Close() {
	st.mu.Lock()
	out := st.drain()
	st.closed = true
	st.mu.Unlock()
	emit(out)
}

// Kinds returns the number of kinds of warnings remembered. Any goroutine.
func (st *State) Kinds() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return len(st.kinds)
}

// drain returns the pending summaries and forgets every kind. st.mu is
// held.
func (st *State) drain() []pending {
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
func (st *State) summary(key string, k *kind, now time.Time) pending {
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

// keyOf is the kind of a message: the message with every run of
// digits masked (attempt counts, ports, ids), cut to maxKey bytes.
func keyOf(msg string) string {
	b := make([]byte, 0, min(len(msg), maxKey))
	for i := 0; i < len(msg) && len(b) < maxKey; i++ {
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
