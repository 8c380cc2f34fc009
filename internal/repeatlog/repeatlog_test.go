package repeatlog

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// captured is a log record as a test sees it.
type captured struct {
	level    slog.Level
	msg      string
	repeated int64 // the "repeated" attribute, 0 if absent
	attrs    map[string]string
}

// capture is a slog.Handler that keeps every record, at every level.
type capture struct {
	mu   sync.Mutex
	recs []captured
}

func (c *capture) Enabled(context.Context, slog.Level) bool { return true }
func (c *capture) WithAttrs([]slog.Attr) slog.Handler       { return c }
func (c *capture) WithGroup(string) slog.Handler            { return c }
func (c *capture) Handle(_ context.Context, r slog.Record) error {
	rec := captured{level: r.Level, msg: r.Message, attrs: map[string]string{}}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "repeated" {
			rec.repeated = a.Value.Int64()
		}
		rec.attrs[a.Key] = a.Value.String()
		return true
	})
	c.mu.Lock()
	c.recs = append(c.recs, rec)
	c.mu.Unlock()
	return nil
}

// matching returns the records whose message contains s.
func (c *capture) matching(s string) []captured {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []captured
	for _, r := range c.recs {
		if strings.Contains(r.msg, s) {
			out = append(out, r)
		}
	}
	return out
}

// waitFor waits up to 10 s for cond.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// summaries and firsts split records into summaries and lines logged as
// they came.
func split(recs []captured) (firsts, summaries []captured) {
	for _, r := range recs {
		if r.repeated > 0 {
			summaries = append(summaries, r)
		} else {
			firsts = append(firsts, r)
		}
	}
	return firsts, summaries
}

func TestRepeatHandler(t *testing.T) {
	c := &capture{}
	const every = 200 * time.Millisecond
	log, st := New(slog.New(c), every)
	defer st.Close()

	for i := 1; i <= 10; i++ {
		log.Warn(fmt.Sprintf("bus: peer down (attempt %d)", i), "err", i)
		log.Info("bus: info passes", "i", i)
	}
	if got := len(c.matching("bus: info passes")); got != 10 {
		t.Errorf("got %d info lines; want 10", got)
	}
	firsts, summaries := split(c.matching("peer down"))
	if len(firsts) != 1 || firsts[0].msg != "bus: peer down (attempt 1)" || len(summaries) != 0 {
		t.Fatalf("got %+v; want the first warning alone", c.matching("peer down"))
	}
	// The summary comes once the interval is over, with the latest repeat's
	// message and attributes.
	waitFor(t, "a summary", func() bool { _, s := split(c.matching("peer down")); return len(s) > 0 })
	_, summaries = split(c.matching("peer down"))
	if s := summaries[0]; len(summaries) != 1 || s.repeated != 9 || s.level != slog.LevelWarn ||
		!strings.HasPrefix(s.msg, "bus: peer down (attempt 10) (repeated 9 times in the last ") || s.attrs["err"] != "10" {
		t.Fatalf("got summaries %+v; want one of 9 repeats", summaries)
	}
	// A kind quiet for a whole interval is forgotten: the next one is
	// logged at once.
	waitFor(t, "the kind forgotten", func() bool {
		st.mu.Lock()
		defer st.mu.Unlock()
		return len(st.kinds) == 0
	})
	log.Warn("bus: peer down (attempt 11)")
	if firsts, _ = split(c.matching("peer down")); len(firsts) != 2 {
		t.Fatalf("got %+v; want the warning after a quiet interval logged", firsts)
	}

	// reset logs the pending repeats at once and forgets them.
	log.Warn("bus: peer down (attempt 12)")
	log.Warn("bus: peer down (attempt 13)")
	st.Reset()
	firsts, summaries = split(c.matching("peer down"))
	if len(summaries) != 2 || summaries[1].repeated != 2 || !strings.HasPrefix(summaries[1].msg, "bus: peer down (attempt 13) (repeated 2 times") {
		t.Fatalf("after reset: got summaries %+v; want a second one of 2 repeats", summaries)
	}
	log.Warn("bus: peer down (attempt 14)")
	if firsts, _ = split(c.matching("peer down")); len(firsts) != 3 {
		t.Fatalf("after reset: got %+v; want the next warning logged at once", firsts)
	}
}

// TestRepeatHandlerRate: however fast and varied the warnings, each kind
// gets at most one line per interval, and kinds are bounded.
func TestRepeatHandlerRate(t *testing.T) {
	c := &capture{}
	const every = 20 * time.Millisecond
	log, st := New(slog.New(c), every)
	start := time.Now()
	n := 0
	for time.Since(start) < 10*every {
		log.Warn("bus: flood", "n", n)
		log.Error(fmt.Sprintf("bus: kind %c", 'a'+n%(maxKinds+36)))
		n++
	}
	elapsed := time.Since(start)
	st.Close()
	maxLines := 2 + int(elapsed/every) // the first, a summary per interval, the last at close
	flood := c.matching("bus: flood")
	if len(flood) > maxLines {
		t.Errorf("got %d lines for %d warnings of one kind in %v; want at most %d", len(flood), n, elapsed, maxLines)
	}
	total := int64(0)
	for _, r := range flood {
		total += max(r.repeated, 1)
	}
	if total != int64(n) {
		t.Errorf("got %d warnings accounted for; want %d", total, n)
	}
	kinds := c.matching("bus: kind ")
	other := c.matching("more warnings of other kinds")
	if len(kinds) > (maxKinds+1)*maxLines || len(other) == 0 {
		t.Errorf("got %d lines for %d kinds (%d about other kinds); want at most %d and some about other kinds",
			len(kinds), maxKinds+36, len(other), (maxKinds+1)*maxLines)
	}
}
