package gateway

import (
	"sync"
	"sync/atomic"

	"github.com/upgate/upgate/loop/frame"
)

// The topic registry. Subscribers live on every event loop and publishes
// come from loops (client messages) and from other goroutines (Go API, admin
// API), so the registry is built for the publish side:
//
//   - Topics are spread over topicShards shards, each a map under its own
//     lock, taken only to subscribe, unsubscribe and look a topic up by name.
//     A client's publish needs no lookup: its connection holds its topic.
//   - A topic's subscribers are an immutable snapshot behind an atomic
//     pointer (copy on write): a publish loads it and walks it without any
//     lock, however many goroutines publish at once.
//   - The snapshot is a list of chunks of up to chunkSize connections, so a
//     subscribe or unsubscribe copies one or two chunks and the chunk index,
//     O(chunkSize + n/chunkSize), rather than the whole list.
//
// A publish encodes its frame once, into one buffer it allocates, and hands
// the same bytes to every subscriber's loop.Conn.SendFrame. The buffer is
// never written again and never reused: writes queued to other loops may
// hold it until they are done, and the garbage collector frees it after.

const (
	topicShards = 64
	chunkSize   = 256
)

// subscribers is an immutable snapshot of a topic's subscribers. Every chunk
// but the last holds chunkSize connections. A connection's index is in
// Conn.subPos. A topic of one chunk keeps its index inline: a snapshot is
// then a single allocation.
type subscribers struct {
	chunks [][]*Conn
	n      int
	inline [1][]*Conn
}

var noSubscribers = &subscribers{}

func newSnapshot(chunks [][]*Conn, nchunks, n int) *subscribers {
	s := &subscribers{n: n}
	if nchunks <= 1 {
		s.chunks = s.inline[:nchunks]
	} else {
		s.chunks = make([][]*Conn, nchunks)
	}
	copy(s.chunks, chunks)
	return s
}

// growCap is the capacity of a fresh array for a chunk of n connections.
func growCap(n int) int { return min(chunkSize, max(4, 2*n)) }

// with returns a snapshot with c appended at index s.n. The last chunk is
// extended in place when it has spare capacity: such a slot was never
// visible in any snapshot (see without), so no reader of s can be reading
// it. Otherwise the chunk moves to a fresh, larger array.
func (s *subscribers) with(c *Conn) *subscribers {
	last := len(s.chunks) - 1
	if last >= 0 && len(s.chunks[last]) < chunkSize {
		ns := newSnapshot(s.chunks, len(s.chunks), s.n+1)
		tail := s.chunks[last]
		if len(tail) == cap(tail) {
			fresh := make([]*Conn, len(tail), growCap(len(tail)+1))
			copy(fresh, tail)
			tail = fresh
		}
		ns.chunks[last] = append(tail, c)
		return ns
	}
	ns := newSnapshot(s.chunks, len(s.chunks)+1, s.n+1)
	ch := make([]*Conn, 1, growCap(1))
	ch[0] = c
	ns.chunks[last+1] = ch
	return ns
}

// without returns a snapshot without the connection at index p: the last
// connection takes its place (and its subPos is updated). The chunk holding
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
		ch := make([]*Conn, len(old), growCap(len(old)))
		copy(ch, old)
		ch[i] = moved
		ns.chunks[ci] = ch
		moved.subPos = p
	}
	return ns
}

// topic is a named set of subscribers.
type topic struct {
	name  string
	shard *topicShard
	subs  atomic.Pointer[subscribers]
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
}

func newTopicRegistry() *topicRegistry {
	r := new(topicRegistry)
	for i := range r.shards {
		r.shards[i].m = make(map[string]*topic)
	}
	return r
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

// subscribe adds c to the topic called name, creating it, and returns it.
func (r *topicRegistry) subscribe(name string, c *Conn) *topic {
	sh := r.shardOfString(name)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	t := sh.m[name]
	if t == nil {
		t = &topic{name: name, shard: sh}
		t.subs.Store(noSubscribers)
		sh.m[name] = t
	}
	s := t.subs.Load()
	c.subPos = s.n
	t.subs.Store(s.with(c))
	return t
}

// unsubscribe removes c from its topic; the topic goes when it is empty.
func (r *topicRegistry) unsubscribe(c *Conn) {
	t := c.topic
	sh := t.shard
	sh.mu.Lock()
	defer sh.mu.Unlock()
	s := t.subs.Load()
	if c.subPos >= s.n || s.chunks[c.subPos/chunkSize][c.subPos%chunkSize] != c {
		return // not subscribed (cannot happen: OnClose runs once)
	}
	ns := s.without(c.subPos)
	t.subs.Store(ns)
	if ns.n == 0 && sh.m[t.name] == t {
		delete(sh.m, t.name)
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

// fanout sends one message to every subscriber of t and returns how many
// accepted it. The frame is encoded once; its buffer is shared by every
// write and never modified after. Any goroutine: on an event loop, the
// subscribers of that loop are written directly.
func fanout(t *topic, op OpCode, payload []byte) int {
	s := t.subs.Load()
	if s.n == 0 {
		return 0
	}
	buf := make([]byte, 0, frame.HeaderLen(len(payload))+len(payload))
	buf = frame.AppendFrame(buf, op, true, payload)
	delivered := 0
	for _, ch := range s.chunks {
		for _, c := range ch {
			if c.lc.SendFrame(buf) == nil {
				delivered++
			}
		}
	}
	return delivered
}

// Publish sends one message to every subscriber of topic and returns how
// many connections accepted it (connections closing or closed as slow
// consumers are not counted). op is OpText (payload must be valid UTF-8; it
// is not checked) or OpBinary; another opcode delivers nothing. payload is
// not retained. Any goroutine, including Handler callbacks.
//
// The frame is encoded once and shared by every subscriber: a publish costs
// one buffer, not one per subscriber.
func (g *Gateway) Publish(topic string, op OpCode, payload []byte) int {
	if op != OpText && op != OpBinary {
		return 0
	}
	g.stats.apiPublishes.Add(1)
	t := g.topics.lookup(topic)
	if t == nil {
		return 0
	}
	n := fanout(t, op, payload)
	g.stats.apiDelivered.Add(uint64(n))
	return n
}

// Subscribers returns the number of connections subscribed to topic. Any
// goroutine.
func (g *Gateway) Subscribers(topic string) int {
	if t := g.topics.lookup(topic); t != nil {
		return t.subs.Load().n
	}
	return 0
}
