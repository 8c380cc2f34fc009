package repeatlog

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/upgate/upgate/internal/testutil"
)

func TestRepeatHandler(t *testing.T) {
	c := &testutil.LogCapture{}
	const every = 200 * time.Millisecond
	log, st := New(slog.New(c), every)
	defer st.Close()

	for i := 1; i <= 10; i++ {
		log.Warn(fmt.Sprintf("bus: peer down (attempt %d)", i), "err", i)
		log.Info("bus: info passes", "i", i)
	}
	if got := len(c.Matching("bus: info passes")); got != 10 {
		t.Errorf("got %d info lines; want 10", got)
	}
	firsts, summaries := testutil.SplitRepeated(c.Matching("peer down"))
	if len(firsts) != 1 || firsts[0].Msg != "bus: peer down (attempt 1)" || len(summaries) != 0 {
		t.Fatalf("got %+v; want the first warning alone", c.Matching("peer down"))
	}
	// The summary comes once the interval is over, with the latest repeat's
	// message and attributes.
	testutil.Eventually(t, "a summary", func() bool { _, s := testutil.SplitRepeated(c.Matching("peer down")); return len(s) > 0 })
	_, summaries = testutil.SplitRepeated(c.Matching("peer down"))
	if s := summaries[0]; len(summaries) != 1 || s.Repeated != 9 || s.Level != slog.LevelWarn ||
		!strings.HasPrefix(s.Msg, "bus: peer down (attempt 10) (repeated 9 times in the last ") || s.Attrs["err"] != "10" {
		t.Fatalf("got summaries %+v; want one of 9 repeats", summaries)
	}
	// A kind quiet for a whole interval is forgotten: the next one is
	// logged at once.
	testutil.Eventually(t, "the kind forgotten", func() bool {
		st.mu.Lock()
		defer st.mu.Unlock()
		return len(st.kinds) == 0
	})
	log.Warn("bus: peer down (attempt 11)")
	if firsts, _ = testutil.SplitRepeated(c.Matching("peer down")); len(firsts) != 2 {
		t.Fatalf("got %+v; want the warning after a quiet interval logged", firsts)
	}

	// reset logs the pending repeats at once and forgets them.
	log.Warn("bus: peer down (attempt 12)")
	log.Warn("bus: peer down (attempt 13)")
	st.Reset()
	firsts, summaries = testutil.SplitRepeated(c.Matching("peer down"))
	if len(summaries) != 2 || summaries[1].Repeated != 2 || !strings.HasPrefix(summaries[1].Msg, "bus: peer down (attempt 13) (repeated 2 times") {
		t.Fatalf("after reset: got summaries %+v; want a second one of 2 repeats", summaries)
	}
	log.Warn("bus: peer down (attempt 14)")
	if firsts, _ = testutil.SplitRepeated(c.Matching("peer down")); len(firsts) != 3 {
		t.Fatalf("after reset: got %+v; want the next warning logged at once", firsts)
	}
}

// TestRepeatHandlerRate: however fast and varied the warnings, each kind
// gets at most one line per interval, every warning of a kind is accounted
// for, and kinds are bounded. The accounting is checked with fewer kinds
// than maxKinds: beyond, a kind forgotten after an interval without a
// repeat (a test goroutine the scheduler left aside that long) would come
// back as part of the overflow kind, whose lines do not count per kind.
func TestRepeatHandlerRate(t *testing.T) {
	for i, tc := range []struct {
		kinds    int  // kinds of errors besides the flood
		overflow bool // more kinds than maxKinds: the overflow kind is used
	}{
		{maxKinds / 2, false},
		{maxKinds + 36, true},
	} {
		c := &testutil.LogCapture{}
		const every = 20 * time.Millisecond
		log, st := New(slog.New(c), every)
		start := time.Now()
		n := 0
		for time.Since(start) < 10*every {
			log.Warn("bus: flood", "n", n)
			log.Error(fmt.Sprintf("bus: kind %c", 'a'+n%tc.kinds))
			n++
		}
		elapsed := time.Since(start)
		st.Close()
		maxLines := 2 + int(elapsed/every) // the first, a summary per interval, the last at close
		flood := c.Matching("bus: flood")
		if !tc.overflow && len(flood) > maxLines {
			t.Errorf("#%d: got %d lines for %d warnings of one kind in %v; want at most %d", i, len(flood), n, elapsed, maxLines)
		}
		total := int64(0)
		for _, r := range flood {
			total += max(r.Repeated, 1)
		}
		if !tc.overflow && total != int64(n) {
			t.Errorf("#%d: got %d warnings accounted for; want %d", i, total, n)
		}
		kinds := c.Matching("bus: kind ")
		other := c.Matching("more warnings of other kinds")
		if len(kinds) > (maxKinds+1)*maxLines || tc.overflow != (len(other) > 0) {
			t.Errorf("#%d: got %d lines for %d kinds (%d about other kinds); want at most %d, and lines about other kinds: %v",
				i, len(kinds), tc.kinds, len(other), (maxKinds+1)*maxLines, tc.overflow)
		}
	}
}
