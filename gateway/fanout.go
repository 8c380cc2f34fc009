package gateway

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/gobwas/ws"

	"github.com/upgate/upgate/loop/frame"
)

// Fan-out to other loops. A publish hands each other event loop with
// subscribers its frame through that loop's fan-out queue: a list of
// (subscribers, frame) items under a mutex, drained on the loop by one task
// (loop.Server.Execute, through the loop's inbox) that is queued when the
// list goes from empty to not empty. So however many publishes arrive while
// a loop is busy, it has one drain waiting, not one task per publish.
//
// A loop that fell behind catches up: the drain writes consecutive items
// of the same topic (the same subscribers: no one joins or leaves the
// loop's group while it drains) as one write per subscriber holding every
// frame, so its cost is one write(2) per subscriber whether one message or
// a hundred waited. The cost of a backlog falls as it grows, instead of growing with
// it.
//
// The queue is bounded by Limits.MaxLoopBacklog bytes of frames per loop.
// A publish that would queue a frame to a loop already holding that much
// (unless its queue is empty: a single message larger than the bound still
// goes) is refused as a whole before anything is delivered: nobody gets
// it, it is counted in upgate_publishes_refused_total by source, and the
// publisher is told: Publish returns ErrLoopBehind (the admin API answers
// 503 with Retry-After), a client publishing on its connection is closed
// with 1013 (try again later), and a topic message from the bus is counted
// undeliverable with reason loop_behind. The check and the queuing are not
// one atomic step: concurrent publishers may each pass the check and
// overshoot the bound by one message each.
//
// Ordering: the drain task is queued, under the queue's mutex, by the
// publish that found the queue empty, and the loop takes the whole list
// under the same mutex when the task runs. An item is therefore written
// either by a drain task queued before the publish that added it returned,
// or by the one that publish queued itself: before any write a goroutine
// queues to that loop after its Publish returned (the loop's inbox carries
// Execute tasks and other goroutines' writes in one FIFO order).

// ErrLoopBehind is returned by Publish when an event loop with subscribers
// of the topic is Limits.MaxLoopBacklog bytes behind: the message was not
// delivered to anyone. Retry later.
var ErrLoopBehind = errors.New("gateway: an event loop is behind: publish refused")

// coalesceMax is the most bytes of frames joined into one write per
// subscriber when a drain finds several for the same subscribers.
const coalesceMax = 64 << 10

// fanItem is one frame queued for the subscribers of a topic on a loop.
type fanItem struct {
	t   *topic
	buf []byte   // the plain frame
	z   *zframes // its compressed frames, nil when none (compress.go)
}

// joined is the frames of consecutive items joined for the subscribers of
// one profile.
type joined struct {
	p   zprofile
	buf []byte
}

// loopQueue is the fan-out queue of one event loop.
type loopQueue struct {
	g    *Gateway
	loop int

	mu        sync.Mutex
	items     []fanItem
	scheduled bool         // a drain task is queued and has not taken the items yet
	bytes     atomic.Int64 // of the frames in items; written under mu

	// Loop goroutine only.
	run     []fanItem // the items being drained
	scratch []byte    // frames joined for one write
	joins   []joined  // frames joined per profile, when some are compressed
	drainFn func()

	_ [64]byte // keep the next loop's queue off this cache line
}

func newLoopQueues(g *Gateway, loops int) []loopQueue {
	qs := make([]loopQueue, loops)
	for i := range qs {
		q := &qs[i]
		q.g, q.loop = g, i
		q.drainFn = q.drain
	}
	return qs
}

// behind reports whether a publish of a payload of n bytes to t must be
// refused: a loop other than cur (the caller's, -1 for none) with
// subscribers of t already holds Limits.MaxLoopBacklog bytes of frames
// (compressed copies included, see push). The publish's own size is taken
// as its plain frame's: its compressed copies are made after this check,
// so a queue may pass the limit by one publish's copies. Any goroutine.
func (g *Gateway) behind(t *topic, cur, n int) bool {
	limit := int64(g.cfg.Limits.MaxLoopBacklog)
	size := int64(frame.HeaderLen(n) + n)
	for i := range t.loops {
		if i == cur || t.on(i) == 0 {
			continue
		}
		if b := g.queues[i].bytes.Load(); b > 0 && b+size > limit {
			return true
		}
	}
	return false
}

// push queues buf for the subscribers of t on the queue's loop and returns
// how many they are now (n, which the caller loaded); 0 when the server is
// stopping. Any goroutine.
func (q *loopQueue) push(t *topic, n int, buf []byte, z *zframes) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.items = append(q.items, fanItem{t, buf, z})
	// The compressed copies of the frame wait in the queue too: they count
	// against Limits.MaxLoopBacklog as much as the plain one.
	q.bytes.Add(int64(len(buf) + z.queued()))
	if !q.scheduled {
		// Queued under mu: see Ordering above.
		if q.g.srv.Execute(q.loop, q.drainFn) != nil {
			clear(q.items)
			q.items = q.items[:0]
			q.bytes.Store(0)
			return 0 // stopping
		}
		q.scheduled = true
	}
	return n
}

// drain runs on the queue's loop: it takes every queued item and writes
// them, joining consecutive frames for the same subscribers.
func (q *loopQueue) drain() {
	q.mu.Lock()
	q.run, q.items = q.items, q.run[:0]
	q.scheduled = false
	q.bytes.Store(0)
	q.mu.Unlock()

	run := q.run
	for i := 0; i < len(run); {
		t := run[i].t
		j := i + 1
		if len(run[i].buf) < coalesceMax {
			size := len(run[i].buf)
			for j < len(run) && run[j].t == t && size+len(run[j].buf) <= coalesceMax {
				size += len(run[j].buf)
				j++
			}
		}
		s := t.loops[q.loop].Load()
		switch {
		case s == nil:
		case j == i+1:
			s.send(run[i].buf, run[i].z)
		case compressed(run[i:j]):
			q.sendJoined(s, run[i:j])
		default:
			b := q.scratch[:0]
			for k := i; k < j; k++ {
				b = append(b, run[k].buf...)
			}
			// On the loop, SendFrame writes b or copies it into the
			// connection's outbound buffer before it returns: the
			// scratch buffer is free again after.
			s.send(b, nil)
			q.scratch = b[:0]
		}
		i = j
	}
	clear(run)
	q.run = run[:0]
}

// compressed reports whether an item of run has compressed frames.
func compressed(run []fanItem) bool {
	for i := range run {
		if run[i].z != nil {
			return true
		}
	}
	return false
}

// sendJoined writes the items of run, all for the subscribers s, to each
// of them in one write: the frames each takes (compressed or plain) are
// joined once per profile among them, since subscribers of one profile
// take the same frames. On the queue's loop.
func (q *loopQueue) sendJoined(s *group, run []fanItem) {
	nj := 0 // q.joins[:nj] hold this run's frames
	for _, c := range s.list {
		k := 0
		for k < nj && q.joins[k].p != c.z {
			k++
		}
		if k == nj {
			if nj == len(q.joins) {
				q.joins = append(q.joins, joined{})
			}
			b := q.joins[k].buf[:0]
			for i := range run {
				b = append(b, run[i].z.frameFor(c.z, run[i].buf)...)
			}
			q.joins[k] = joined{c.z, b}
			nj++
		}
		// WriteFrame copies what it does not write: see drain.
		_ = c.lc.WriteFrame(q.joins[k].buf)
	}
}

// fanout sends one message to every subscriber of t and returns how many it
// was handed to: on the loop cur (the caller's, -1 for none) the
// subscribers that accepted it, on every other loop the subscribers it had
// at the time (one that closes before its loop drains the queue, or is
// found a slow consumer then, is counted but does not get it; one that
// joins before is not counted but gets it). The frame is
// encoded once, and compressed once per (level, window bits) its
// subscribers take it with (compress.go); each buffer is shared by every
// write of it and never modified after. The caller checked behind. Any goroutine.
func (g *Gateway) fanout(t *topic, op OpCode, payload []byte, cur int) int {
	if t.n.Load() == 0 {
		return 0
	}
	buf := make([]byte, 0, frame.HeaderLen(len(payload))+len(payload))
	buf = frame.AppendFrame(buf, ws.OpCode(op), true, payload)
	z := g.compress(t, op, payload)
	delivered := 0
	for i := range t.loops {
		s := t.loops[i].Load()
		switch {
		case s == nil:
		case i == cur:
			delivered += s.send(buf, z)
		default:
			if n := s.n.Load(); n > 0 {
				delivered += g.queues[i].push(t, int(n), buf, z)
			}
		}
	}
	return delivered
}

// Sources of a publish, the label of the refused-publish counter.
const (
	srcAPI    = iota // Gateway.Publish, the admin API
	srcClient        // a client's message on a route with publish
	srcBus           // a topic message from the bus
	numSources
)

// sourceNames are the label values of the sources.
var sourceNames = [numSources]string{"api", "client", "bus"}
