//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"fmt"
	"strconv"
	"sync"
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

// TestCloseFollowsAcceptedSends: goroutines send while another closes the
// connection. Every message whose Send returned nil arrives, in each
// sender's order, before the close frame; none follows it; every Send after
// the close returns ErrClosed.
func TestCloseFollowsAcceptedSends(t *testing.T) {
	o := testOptions()
	o.MaxOutbound = 64 << 20
	h := newTestHandler()
	s := startServer(t, h, o)
	clients, cs := openConns(t, s, h, 1)
	w, c := clients[0], cs[0]

	const senders = 6
	var accepted [senders]atomic.Int64
	var wg sync.WaitGroup
	for g := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				err := c.Send(ws.OpText, []byte(strconv.Itoa(g)+" "+strconv.Itoa(i)))
				if err != nil {
					if err != ErrClosed {
						t.Errorf("sender %d: %v", g, err)
					}
					return
				}
				accepted[g].Add(1)
			}
		}()
	}
	var got [senders]int64
	closed := false
	for !closed {
		f := w.Next()
		switch f.Op {
		case ws.OpText:
			var g, i int64
			if _, err := fmt.Sscan(string(f.Payload), &g, &i); err != nil || g < 0 || g >= senders {
				t.Fatalf("frame %q", f.Payload)
			}
			if i != got[g] {
				t.Fatalf("sender %d: message %d, want %d", g, i, got[g])
			}
			got[g]++
			if got[0] == 200 {
				go func() { _ = c.Close(4000, "enough") }()
			}
		case ws.OpClose:
			if f.CloseCode() != 4000 {
				t.Fatalf("close %d", f.CloseCode())
			}
			closed = true
		default:
			t.Fatalf("got %v", f)
		}
	}
	wg.Wait()
	for g := range senders {
		if got[g] != accepted[g].Load() {
			t.Errorf("sender %d: %d accepted, %d received before the close", g, accepted[g].Load(), got[g])
		}
	}
	w.Write(msg(ws.OpClose, closePayload(4000, "")))
	w.ExpectEOF()
}
