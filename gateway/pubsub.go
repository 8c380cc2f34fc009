package gateway

import (
	"sync"
	"sync/atomic"

	"github.com/upgate/upgate/gateway/bus"
)

// The topic registry. Subscribers live on every event loop and publishes
// come from loops (client messages) and from other goroutines (Go API, admin
// API), so the registry is built for the publish side:
//
//   - Topics are spread over topicShards shards, each a map under its own
//     lock, taken only to subscribe, unsubscribe and look a topic up by name.
//     A client's publish needs no lookup: its connection holds its topic.
//   - A topic's subscribers are grouped by event loop (subscriber.group,
//     the loop's index). Each group is an immutable snapshot behind an atomic
//     pointer (copy on write): a publish loads it and walks it without any
//     lock, however many goroutines publish at once.
//   - A snapshot is a list of chunks of up to chunkSize subscribers, so a
//     subscribe or unsubscribe copies one or two chunks and the chunk index,
//     O(chunkSize + n/chunkSize), rather than the whole list.
//
// A publish encodes its frame once, into one buffer it allocates (and once
// compressed per kind of subscriber that takes it so: compress.go), and
// shares the bytes with every subscriber: it writes them itself to the
// subscribers of the loop it runs on, if any, and queues them for each
// other loop with subscribers, whose loop writes them to its subscribers
// directly. So a publish from any goroutine costs O(loops) hand-offs and
// allocations, not O(subscribers). The buffer is never written again and
// never reused: queues may hold it until they are drained, and the garbage
// collector frees it after.
//
// A loop that falls behind its publishers is bounded and catches up: see
// fanout.go.

const (
	topicShards = 64
	chunkSize   = 256
)

// subscribers is an immutable snapshot of a topic's subscribers on one
// event loop. Every chunk but the last holds chunkSize subscribers. A
// subscriber's index is in subscriber.pos. A group of one chunk keeps its
// index inline: a snapshot is then a single allocation.
type subscribers struct {
	chunks [][]*subscriber
	n      int
	inline [1][]*subscriber
}

var noSubscribers = &subscribers{}

func newSnapshot(chunks [][]*subscriber, nchunks, n int) *subscribers {
	s := &subscribers{n: n}
	if nchunks <= 1 {
		s.chunks = s.inline[:nchunks]
	} else {
		s.chunks = make([][]*subscriber, nchunks)
	}
	copy(s.chunks, chunks)
	return s
}

// growCap is the capacity of a fresh array for a chunk of n subscribers.
func growCap(n int) int { return min(chunkSize, max(4, 2*n)) }

// with returns a snapshot with c appended at index s.n. The last chunk is
// extended in place when it has spare capacity: such a slot was never
// visible in any snapshot (see without), so no reader of s can be reading
// it. Otherwise the chunk moves to a fresh, larger array.
func (s *subscribers) with(c *subscriber) *subscribers {
	last := len(s.chunks) - 1
	if last >= 0 && len(s.chunks[last]) < chunkSize {
		ns := newSnapshot(s.chunks, len(s.chunks), s.n+1)
		tail := s.chunks[last]
		if len(tail) == cap(tail) {
			fresh := make([]*subscriber, len(tail), growCap(len(tail)+1))
			copy(fresh, tail)
			tail = fresh
		}
		ns.chunks[last] = append(tail, c)
		return ns
	}
	ns := newSnapshot(s.chunks, len(s.chunks)+1, s.n+1)
	ch := make([]*subscriber, 1, growCap(1))
	ch[0] = c
	ns.chunks[last+1] = ch
	return ns
}

// without returns a snapshot without the subscriber at index p: the last
// subscriber takes its place (and its pos is updated). The chunk holding
// p is copied, never written in place, since readers of s may be walking it;
// a last chunk that only shrinks keeps its array but loses its spare
// capacity, so that the slot it gives up is never written again while an
// older snapshot can still see it.
func (s *subscribers) without(p int) *subscribers {
	if s.n <= 1 {
		return noSubscribers
	}
	lastIdx := s.n - 1
	lastCh := len(s.chunks) - 1
	tail := s.chunks[lastCh]
	moved := tail[len(tail)-1]
	ns := newSnapshot(s.chunks, len(s.chunks), s.n-1)
	if len(tail) == 1 {
		ns.chunks = ns.chunks[:lastCh]
	} else {
		ns.chunks[lastCh] = tail[: len(tail)-1 : len(tail)-1]
	}
	if p != lastIdx {
		ci, i := p/chunkSize, p%chunkSize
		old := ns.chunks[ci]
		ch := make([]*subscriber, len(old), growCap(len(old)))
		copy(ch, old)
		ch[i] = moved
		ns.chunks[ci] = ch
		moved.pos = int32(p)
	}
	return ns
}

// topic is a named set of subscribers, grouped by event loop.
type topic struct {
	name  string
	shard *topicShard
	n     atomic.Int64                  // subscribers over every loop; written under the shard's lock
	loops []atomic.Pointer[subscribers] // by subscriber.group
	zk    atomic.Pointer[zkinds]        // profiles of the subscribers with deflate; nil when none (compress.go)
}

type topicShard struct {
	mu sync.RWMutex
	m  map[string]*topic
	_  [32]byte // keep neighbouring shards' locks off one cache line
}

// topicRegistry holds the topics that have subscribers. Safe for concurrent
// use.
type topicRegistry struct {
	shards [topicShards]topicShard
	loops  int // groups per topic: the number of event loops
	// watch, when set (a bus), is told under the topic's lock when a topic
	// gets its first subscriber (on) and loses its last (off). It must not
	// block.
	watch func(topic string, on bool)
}

func newTopicRegistry(loops int) *topicRegistry {
	r := &topicRegistry{loops: max(1, loops)}
	for i := range r.shards {
		r.shards[i].m = make(map[string]*topic)
	}
	return r
}

// group returns the subscriber group of a connection on loop index i.
func (r *topicRegistry) group(i int) int32 {
	if i < 0 || i >= r.loops {
		return 0 // cannot happen; a publish would still reach it, off its loop
	}
	return int32(i)
}

// shardOf hashes a name (FNV-1a) to its shard.
func (r *topicRegistry) shardOf(name []byte) *topicShard {
	h := uint32(2166136261)
	for _, b := range name {
		h = (h ^ uint32(b)) * 16777619
	}
	return &r.shards[h%topicShards]
}

func (r *topicRegistry) shardOfString(name string) *topicShard {
	h := uint32(2166136261)
	for i := 0; i < len(name); i++ {
		h = (h ^ uint32(name[i])) * 16777619
	}
	return &r.shards[h%topicShards]
}

// intern returns name as a string, sharing the existing topic's string when
// there is one (no allocation), else a copy.
func (r *topicRegistry) intern(name []byte) string {
	sh := r.shardOf(name)
	sh.mu.RLock()
	t := sh.m[string(name)]
	sh.mu.RUnlock()
	if t != nil {
		return t.name
	}
	return string(name)
}

// lookup returns the topic called name, or nil when it has no subscribers.
func (r *topicRegistry) lookup(name string) *topic {
	sh := r.shardOfString(name)
	sh.mu.RLock()
	t := sh.m[name]
	sh.mu.RUnlock()
	return t
}

// subscribe adds c to the topic called name, creating it, and returns it
// (c.topic too). c.lc and c.group must be set.
func (r *topicRegistry) subscribe(name string, c *subscriber) *topic {
	sh := r.shardOfString(name)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	t := sh.m[name]
	if t == nil {
		t = &topic{name: name, shard: sh, loops: make([]atomic.Pointer[subscribers], r.loops)}
		for i := range t.loops {
			t.loops[i].Store(noSubscribers)
		}
		sh.m[name] = t
		if r.watch != nil {
			r.watch(name, true)
		}
	}
	c.z = profileOf(c.lc)
	if c.z.bits != 0 {
		// Before the snapshot: see compress.go.
		t.zk.Store(t.zk.Load().add(c.z, 1))
	}
	g := &t.loops[c.group]
	s := g.Load()
	c.topic, c.pos = t, int32(s.n)
	g.Store(s.with(c))
	t.n.Add(1)
	return t
}

// unsubscribe removes c from its topic; the topic goes when it is empty.
func (r *topicRegistry) unsubscribe(c *subscriber) {
	t := c.topic
	sh := t.shard
	sh.mu.Lock()
	defer sh.mu.Unlock()
	g := &t.loops[c.group]
	s := g.Load()
	p := int(c.pos)
	if p >= s.n || s.chunks[p/chunkSize][p%chunkSize] != c {
		return // not subscribed (cannot happen: OnClose runs once)
	}
	g.Store(s.without(p))
	if c.z.bits != 0 {
		t.zk.Store(t.zk.Load().add(c.z, -1))
	}
	if t.n.Add(-1) == 0 && sh.m[t.name] == t {
		delete(sh.m, t.name)
		if r.watch != nil {
			r.watch(t.name, false)
		}
	}
}

// each calls fn for every subscriber of t, loop by loop, until fn returns
// false. Any goroutine; it walks the snapshots of the moment.
func (t *topic) each(fn func(*subscriber) bool) {
	for i := range t.loops {
		for _, ch := range t.loops[i].Load().chunks {
			for _, c := range ch {
				if !fn(c) {
					return
				}
			}
		}
	}
}

// count returns the number of topics with subscribers.
func (r *topicRegistry) count() int {
	n := 0
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.RLock()
		n += len(sh.m)
		sh.mu.RUnlock()
	}
	return n
}

// send writes a publish to every subscriber of the snapshot, all of one
// loop, and returns how many accepted it: the shared plain frame buf, or
// the shared compressed frame of z that a subscriber takes (z may be nil).
// On that loop's goroutine.
func (s *subscribers) send(buf []byte, z *zframes) int {
	n := 0
	for _, ch := range s.chunks {
		for _, c := range ch {
			b := buf
			if z != nil {
				b = z.frameFor(c.z, buf)
			}
			if c.lc.WriteFrame(b) == nil {
				n++
			}
		}
	}
	return n
}

// Publish sends one message to every subscriber of topic and returns how
// many connections it was handed to. op is OpText (payload must be valid
// UTF-8; it is not checked) or OpBinary; another opcode delivers nothing.
// payload is not retained. Any goroutine, including Handler callbacks.
//
// The frame is encoded once and shared by every subscriber: a publish costs
// one buffer and one hand-off per event loop with subscribers, not one per
// subscriber. Every loop writes the message a moment later, through its
// inbox, and it is counted for the subscribers of the moment (one that
// closes in between is counted but does not get the message). Each
// subscriber receives one goroutine's publishes, and its sends from
// Conn.Send and Gateway.Send, in the order they were made; a Conn.Write
// made on the loop goes out at once, ahead of what is queued.
//
// When an event loop with subscribers of the topic is behind by
// Limits.MaxLoopBacklog, the publish is refused as a whole: nobody gets it,
// it is counted, and Publish returns ErrLoopBehind (see fanout.go).
//
// With a bus (Config.NATS) the message also goes to the topic's subject,
// <prefix>.topic.<name>, for the subscribers of the other nodes; the count
// is this node's. It never waits for the bus.
func (g *Gateway) Publish(topic string, op OpCode, payload []byte) (int, error) {
	if op != OpText && op != OpBinary {
		return 0, nil
	}
	g.stats.apiPublishes.Add(1)
	t := g.topics.lookup(topic)
	if t != nil && g.behind(t, -1, len(payload)) {
		g.stats.refused[srcAPI].Add(1)
		return 0, ErrLoopBehind
	}
	if g.bus != nil {
		_ = g.bus.Publish(topic, bus.OpCode(op), payload)
	}
	if t == nil {
		return 0, nil
	}
	n := g.fanout(t, op, payload, -1)
	g.stats.apiDelivered.Add(uint64(n))
	return n, nil
}

// Subscribers returns the number of connections subscribed to topic. Any
// goroutine.
func (g *Gateway) Subscribers(topic string) int {
	if t := g.topics.lookup(topic); t != nil {
		return int(t.n.Load())
	}
	return 0
}
