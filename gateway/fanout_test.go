package gateway

import (
	"bytes"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/upgate/upgate/internal/wstest"
)

// fanoutPayload is the message seq of publisher pub: its text names both,
// and the rest is derived from them, so that a frame changed after it was
// encoded is noticed.
func fanoutPayload(pub, seq int) []byte {
	b := fmt.Appendf(nil, "%d:%d:", pub, seq)
	for i := range 48 {
		b = append(b, 'a'+byte((pub*7+seq+i)%26))
	}
	return b
}

// fanoutReader reads one subscriber's frames and checks that each
// publisher's messages arrive intact, in order and without a gap from the
// first one received.
type fanoutReader struct {
	rc   *wstest.Client
	done chan struct{} // closed when the connection ended or a check failed

	mu   sync.Mutex
	last []int // by publisher: last sequence number, -1 before the first
	err  error
}

func newFanoutReader(rc *wstest.Client, pubs int) *fanoutReader {
	r := &fanoutReader{rc: rc, last: make([]int, pubs), done: make(chan struct{})}
	for i := range r.last {
		r.last[i] = -1
	}
	go r.run()
	return r
}

func (r *fanoutReader) run() {
	defer close(r.done)
	buf := make([]byte, 4096)
	for {
		op, n, err := r.rc.ReadFrameInto(buf)
		if err != nil || op == 8 {
			return // closed by the client or by the server
		}
		p := buf[:n]
		parts := bytes.SplitN(p, []byte(":"), 3)
		r.mu.Lock()
		var pub, seq int
		var err1, err2 error
		if len(parts) == 3 {
			pub, err1 = strconv.Atoi(string(parts[0]))
			seq, err2 = strconv.Atoi(string(parts[1]))
		}
		switch {
		case op != 1 || len(parts) != 3 || err1 != nil || err2 != nil || pub < 0 || pub >= len(r.last):
			r.err = fmt.Errorf("bad frame op %d %q", op, p)
		case !bytes.Equal(p, fanoutPayload(pub, seq)):
			r.err = fmt.Errorf("frame %d of publisher %d corrupted: %q", seq, pub, p)
		case r.last[pub] >= 0 && seq != r.last[pub]+1:
			r.err = fmt.Errorf("publisher %d: message %d after %d", pub, seq, r.last[pub])
		default:
			r.last[pub] = seq
		}
		bad := r.err != nil
		r.mu.Unlock()
		if bad {
			return
		}
	}
}

// state reports whether every publisher's message upTo was received, and
// the first failed check.
func (r *fanoutReader) state(upTo int) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range r.last {
		if l != upTo {
			return false, r.err
		}
	}
	return true, r.err
}

// TestFanoutConcurrentCloses publishes from two goroutines and from a
// client, over two loops, while subscribers join, close their sockets and
// are disconnected by the server. Every subscriber gets each publisher's
// messages intact and in order; those that stay get all of them. Under
// the race detector this also checks that the shared frames are only ever
// read once published.
func TestFanoutConcurrentCloses(t *testing.T) {
	cfg := testConfig(Route{Path: "/ws/{topic}", Behaviour: PubSub, Publish: true})
	cfg.Loops = 2
	cfg.Limits.MaxOutbound = 64 << 20
	g := startGateway(t, cfg)
	const (
		pubs    = 3 // two goroutines and a client
		msgs    = 300
		stay    = 24
		leave   = 24
		joiners = 12
	)
	dialSub := func() *fanoutReader { return newFanoutReader(dialRaw(t, g, "/ws/race"), pubs) }
	var stayers, leavers, joined []*fanoutReader
	for range stay {
		stayers = append(stayers, dialSub())
	}
	publisher := dialRaw(t, g, "/ws/race")
	stayers = append(stayers, newFanoutReader(publisher, pubs))
	eventually(t, "subscriptions", func() bool { return g.Subscribers("race") == stay+1 })
	staying := map[uint64]bool{}
	for _, id := range ids(g) {
		staying[id] = true
	}
	for range leave {
		leavers = append(leavers, dialSub())
	}
	eventually(t, "subscriptions", func() bool { return g.Subscribers("race") == stay+1+leave })
	var leaving []uint64
	for _, id := range ids(g) {
		if !staying[id] {
			leaving = append(leaving, id)
		}
	}

	var wg sync.WaitGroup
	var progress atomic.Int64
	for pub := range 2 {
		wg.Go(func() {
			for seq := range msgs {
				g.Publish("race", OpText, fanoutPayload(pub, seq))
				progress.Add(1)
				if seq%50 == 0 {
					time.Sleep(time.Millisecond) // pacing: the flow lasts while subscribers come and go
				}
			}
		})
	}
	wg.Go(func() {
		for seq := range msgs {
			if _, err := publisher.Conn.Write(maskedFrame(1, fanoutPayload(2, seq))); err != nil {
				t.Error(err)
				return
			}
		}
	})
	// Subscribers go while the messages flow: half close their sockets,
	// the server disconnects the others.
	wg.Go(func() {
		for progress.Load() < msgs/3 {
			time.Sleep(time.Millisecond) // polls: a third of the messages sent
		}
		for i, r := range leavers {
			if i%2 == 0 {
				_ = r.rc.Conn.Close()
			}
		}
		for _, id := range leaving {
			_ = g.Disconnect(id, 4000, "leave")
		}
	})
	// And others join.
	for range joiners {
		joined = append(joined, dialSub())
	}
	wg.Wait()

	// A last message from each publisher: everyone still subscribed gets
	// every message up to it.
	for pub := range 2 {
		g.Publish("race", OpText, fanoutPayload(pub, msgs))
	}
	if _, err := publisher.Conn.Write(maskedFrame(1, fanoutPayload(2, msgs))); err != nil {
		t.Fatal(err)
	}
	for _, r := range append(stayers, joined...) {
		eventually(t, "every message to a subscriber that stayed", func() bool {
			complete, err := r.state(msgs)
			return err != nil || complete
		})
		if _, err := r.state(msgs); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range leavers {
		select {
		case <-r.done:
		case <-time.After(testTimeout):
			t.Fatal("a subscriber that left is still reading")
		}
		if _, err := r.state(msgs); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the leavers to be unsubscribed", func() bool { return g.Subscribers("race") == stay+1+joiners })
}
