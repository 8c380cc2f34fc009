package loop

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// TestInboxLetsTheLoopRead: a loop kept busy by a stream of tasks from
// another goroutine (each replaced as soon as it ran, so that the inbox is
// never empty) still reads its connections between two drains: an echo's
// round trip stays within a drain or two, not the length of the stream.
func TestInboxLetsTheLoopRead(t *testing.T) {
	o := testOptions()
	o.NumLoops = 1
	h := newTestHandler()
	s := startServer(t, h, o)
	ws_, cs := openConns(t, s, h, 1)
	w, c := ws_[0], cs[0]

	const inFlight, work = 8, 5 * time.Millisecond // a drain: about 40 ms
	var stop atomic.Bool
	ran := make(chan struct{}, inFlight)
	task := func() {
		time.Sleep(work) // the loop is busy: the task holds it for work
		ran <- struct{}{}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range inFlight {
			if err := s.Execute(c.LoopIndex(), task); err != nil {
				t.Error(err)
				return
			}
		}
		for range ran {
			if stop.Load() {
				return
			}
			if err := s.Execute(c.LoopIndex(), task); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	var worst time.Duration
	for i := range 20 {
		start := time.Now()
		w.Write(text("ping " + string(rune('a'+i))))
		w.ExpectMessage(ws.OpText, []byte("ping "+string(rune('a'+i))))
		worst = max(worst, time.Since(start))
	}
	stop.Store(true)
	<-done
	// Two drains and then some; a loop that ran the stream back to back
	// would answer only after the stream stopped.
	if limit := 2*inFlight*work + 300*time.Millisecond; worst > limit {
		t.Fatalf("slowest echo %v with the loop busy; want under %v", worst, limit)
	}
}
