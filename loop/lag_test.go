//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"context"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"
)

// stallLoop runs a task on loop i that keeps it busy until the server's
// tick passes the tick it started at plus d, as a CPU-starved loop would.
// The task goes through gnet's own task queue, where the loop's timer task
// also waits, so that the timers run right after it, before the loop polls
// its sockets again: the case where a deadline falls due while its answer
// waits unread. It returns once the task runs, before it ends; done is
// closed when it ends.
func stallLoop(t *testing.T, s *Server, i int, d time.Duration) (done chan struct{}) {
	t.Helper()
	started := make(chan struct{})
	done = make(chan struct{})
	l := (*s.loops.Load())[i]
	err := l.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
		until := time.Now().Add(d)
		close(started)
		// Until d passed and the ticker queued the timer task behind this
		// one.
		for time.Now().Before(until) || !l.tickQueued.Load() {
			time.Sleep(time.Millisecond) // holds the loop while polling the clock
		}
		close(done)
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-time.After(testTimeout):
		t.Fatal("the stalling task did not start")
	}
	return done
}

func waitDone(t *testing.T, done chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(testTimeout):
		t.Fatal("the stalling task did not end")
	}
}

// TestLateLoopReadsBeforeJudging: a loop kept busy past a deadline while
// the client's answer waits unread in the socket must not judge the
// connection before it read that answer (the pong, a message, the rest of
// the head).
func TestLateLoopReadsBeforeJudging(t *testing.T) {
	t.Run("pong", func(t *testing.T) {
		o := testOptions()
		o.PingInterval = 100 * time.Millisecond
		o.PongTimeout = 100 * time.Millisecond
		h := newTestHandler()
		s := startServer(t, h, o)
		ws_, cs := openConns(t, s, h, 1)
		w, c := ws_[0], cs[0]
		f := w.Next()
		if f.Op != ws.OpPing {
			t.Fatalf("got %v, want a ping", f)
		}
		done := stallLoop(t, s, c.LoopIndex(), 5*o.PongTimeout)
		w.Write(msg(ws.OpPong, f.Payload)) // in time, but the loop is busy
		waitDone(t, done)
		w.Write(text("still here"))
		for {
			f := w.Next()
			if f.Op == ws.OpPing {
				w.Write(msg(ws.OpPong, f.Payload))
				continue
			}
			if f.Op != ws.OpText || string(f.Payload) != "still here" {
				t.Fatalf("got %v, want the echo", f)
			}
			break
		}
		snap := s.Stats()
		if snap.PongTimeouts != 0 || snap.DeadlinesDeferred == 0 {
			t.Fatalf("pong timeouts %d, deadlines deferred %d; want 0 and at least 1", snap.PongTimeouts, snap.DeadlinesDeferred)
		}
		lag, ok := s.LoopLag(c.LoopIndex())
		// Counts[5] is the lags of at most 100 ms: the stall is longer.
		if !ok || lag.Bounds[5] != 100*time.Millisecond || lag.Counts[5] == lag.Count {
			t.Fatalf("lag histogram %+v shows no lag over 100ms", lag)
		}
	})
	t.Run("idle", func(t *testing.T) {
		o := testOptions()
		o.IdleTimeout = 100 * time.Millisecond
		h := newTestHandler()
		s := startServer(t, h, o)
		ws_, cs := openConns(t, s, h, 1)
		w, c := ws_[0], cs[0]
		done := stallLoop(t, s, c.LoopIndex(), 5*o.IdleTimeout)
		w.Write(text("still here"))
		waitDone(t, done)
		w.ExpectMessage(ws.OpText, []byte("still here"))
		if snap := s.Stats(); snap.IdleTimeouts != 0 || snap.DeadlinesDeferred == 0 {
			t.Fatalf("idle timeouts %d, deadlines deferred %d; want 0 and at least 1", snap.IdleTimeouts, snap.DeadlinesDeferred)
		}
	})
	t.Run("head", func(t *testing.T) {
		o := testOptions()
		o.NumLoops = 1
		o.HandshakeTimeout = 100 * time.Millisecond
		h := newTestHandler()
		s := startServer(t, h, o)
		w := dialRaw(t, s)
		eventually(t, "the accept", func() bool { return s.Stats().ConnsOpen == 1 })
		done := stallLoop(t, s, 0, 3*o.HandshakeTimeout/2)
		w.Write(upgradeRequest("/ws"))
		waitDone(t, done)
		w.ExpectSwitching()
		if snap := s.Stats(); snap.HandshakeTimeouts != 0 || snap.DeadlinesDeferred == 0 {
			t.Fatalf("handshake timeouts %d, deadlines deferred %d; want 0 and at least 1", snap.HandshakeTimeouts, snap.DeadlinesDeferred)
		}
	})
}

// TestLateLoopCountsDeadlinesFromNow: a connection that a busy loop takes
// in late gets its whole handshake timeout, counted from when the loop took
// it, not from the loop's last timer run.
func TestLateLoopCountsDeadlinesFromNow(t *testing.T) {
	o := testOptions()
	o.NumLoops = 1
	o.HandshakeTimeout = 100 * time.Millisecond
	s := startServer(t, newTestHandler(), o)
	first := dialRaw(t, s) // the loop exists once it had a connection
	eventually(t, "the accept", func() bool { return s.Stats().ConnsOpen == 1 })
	first.Write(upgradeRequest("/ws"))
	first.ExpectSwitching()
	done := stallLoop(t, s, 0, 5*o.HandshakeTimeout)
	w := dialRaw(t, s) // taken in once the stall ends
	waitDone(t, done)
	ended := time.Now()
	if status, _ := w.ReadHead(); status != 408 {
		t.Fatalf("status %d, want 408", status)
	}
	if d := time.Since(ended); d < o.HandshakeTimeout*9/10 {
		t.Fatalf("408 came %v after the loop was free; want the whole %v", d, o.HandshakeTimeout)
	}
}

// TestPingJitter: pings come early by at most a quarter of the interval,
// never late, and spread over that quarter.
func TestPingJitter(t *testing.T) {
	const interval = 300
	seen := map[uint32]bool{}
	for id := uint64(1); id <= 2000; id++ {
		j := pingJitter(id, uint32(id*7), interval)
		if j > interval/4 {
			t.Fatalf("#%d: jitter %d; want at most %d", id, j, interval/4)
		}
		seen[j] = true
	}
	if len(seen) < interval/4*9/10 {
		t.Fatalf("2000 connections drew %d distinct jitters of %d", len(seen), interval/4+1)
	}
	for _, iv := range []uint32{0, 1, 3} {
		if j := pingJitter(42, 7, iv); j != 0 {
			t.Fatalf("interval %d: jitter %d; want 0", iv, j)
		}
	}
}
