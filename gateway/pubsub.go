package gateway

import (
	"sync"
	"sync/atomic"

	"github.com/upgate/upgate/gateway/bus"
)

// The topic registry. Subscribers live on every event loop and publishes
// come from loops (client messages) and from other goroutines (Go API, admin
// API, the bus):
//
//   - Topics are spread over topicShards shards, each a map under its own
//     lock, taken only to subscribe, unsubscribe and look a topic up by name.
//     A client's publish needs no lookup: its connection holds its topic.
//   - A topic's subscribers are grouped by event loop (subscriber.group,
//     the loop's index). Each group is a plain list that only its loop
//     reads and writes: a connection subscribes in OnOpen and leaves in
//     OnClose, on its loop, and only that loop writes a publish to it. So
//     joining and leaving allocate nothing (the list keeps its capacity),
//     and a subscriber is out of every list before its connection's state
//     can be reused. Other goroutines see a group's length only (an
//     atomic), to know which loops to hand a publish to.
//
// A publish encodes its frame once, into one buffer it allocates (and once
// compressed per kind of subscriber that takes it so: compress.go), and
// shares the bytes with every subscriber: it writes them itself to the
// subscribers of the loop it runs on, if any, and queues them for each
// other loop with subscribers, whose loop writes them to the subscribers
// its group has when it drains its queue. So a publish from any goroutine
// costs O(loops) hand-offs and allocations, not O(subscribers). The buffer
// is never written again and never reused: queues may hold it until they
// are drained, and the garbage collector frees it after.
//
// A loop that falls behind its publishers is bounded and catches up: see
// fanout.go.

const topicShards = 64

// group is a topic's subscribers on one event loop.
type group struct {
	list []*subscriber // loop goroutine only; a subscriber's index is its pos
	n    atomic.Int64  // len(list), for other goroutines
}

// keepSlack is how much spare room a group's list keeps when it shrinks:
// a list under a quarter full and longer than this moves to a smaller
// array, so a topic that lost its crowd does not keep its memory.
const keepSlack = 64

// add appends c to the group. On the group's loop.
func (gr *group) add(c *subscriber) {
	c.pos = int32(len(gr.list))
	gr.list = append(gr.list, c)
	gr.n.Store(int64(len(gr.list)))
}

// remove takes c out of the group: the last subscriber takes its place. It
// reports false when c is not there (cannot happen: OnClose runs once). On
// the group's loop.
func (gr *group) remove(c *subscriber) bool {
	p, last := int(c.pos), len(gr.list)-1
	if p > last || gr.list[p] != c {
		return false
	}
	moved := gr.list[last]
	gr.list[p], moved.pos = moved, int32(p)
	gr.list[last] = nil
	gr.list = gr.list[:last]
	if cap(gr.list) > keepSlack && 4*len(gr.list) < cap(gr.list) {
		gr.list = append(make([]*subscriber, 0, 2*len(gr.list)), gr.list...)
	}
	gr.n.Store(int64(len(gr.list)))
	return true
}

// topic is a named set of subscribers, grouped by event loop.
type topic struct {
	name  string
	shard *topicShard
	n     atomic.Int64            // subscribers over every loop; written under the shard's lock
	loops []atomic.Pointer[group] // by subscriber.group; nil until the loop has a subscriber
	zk    atomic.Pointer[zkinds]  // profiles of the subscribers with deflate; nil when none (compress.go)
}

// on returns the number of t's subscribers on loop i. Any goroutine.
func (t *topic) on(i int) int64 {
	if gr := t.loops[i].Load(); gr != nil {
		return gr.n.Load()
	}
	return 0
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

// intern returns name as a string that does not change: the existing
// topic's name when there is one (no allocation), else a copy.
func (r *topicRegistry) intern(name []byte) *string {
	sh := r.shardOf(name)
	sh.mu.RLock()
	t := sh.m[string(name)]
	sh.mu.RUnlock()
	if t != nil {
		return &t.name
	}
	s := string(name)
	return &s
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
// (c.topic too). c.lc and c.group must be set. On c's loop (the group's).
func (r *topicRegistry) subscribe(name string, c *subscriber) *topic {
	sh := r.shardOfString(name)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	t := sh.m[name]
	if t == nil {
		t = &topic{name: name, shard: sh, loops: make([]atomic.Pointer[group], r.loops)}
		sh.m[name] = t
		if r.watch != nil {
			r.watch(name, true)
		}
	}
	c.z = profileOf(c.lc)
	if c.z.bits != 0 {
		t.zk.Store(t.zk.Load().add(c.z, 1))
	}
	gr := t.loops[c.group].Load()
	if gr == nil {
		gr = new(group)
		t.loops[c.group].Store(gr)
	}
	c.topic = t
	gr.add(c)
	t.n.Add(1)
	return t
}

// unsubscribe removes c from its topic; the topic goes when it is empty.
// On c's loop.
func (r *topicRegistry) unsubscribe(c *subscriber) {
	t := c.topic
	sh := t.shard
	sh.mu.Lock()
	defer sh.mu.Unlock()
	gr := t.loops[c.group].Load()
	if gr == nil || !gr.remove(c) {
		return // not subscribed (cannot happen: OnClose runs once)
	}
	c.topic = nil
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

// send writes a publish to every subscriber of the group and returns how
// many accepted it: the shared plain frame buf, or the shared compressed
// frame of z that a subscriber takes (z may be nil). On the group's loop,
// inside a Handler call or a task of the loop's inbox: a write that fails
// makes gnet close that connection at once, and the loop defers the
// OnClose that unsubscribes it until the call returns, so the list does not
// change under this walk.
func (gr *group) send(buf []byte, z *zframes) int {
	n := 0
	for _, c := range gr.list {
		b := buf
		if z != nil {
			b = z.frameFor(c.z, buf)
		}
		if c.lc.WriteFrame(b) == nil {
			n++
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
// inbox, and it is counted for the subscribers of the moment; it goes to
// those the loop has when it writes it (one that closes in between is
// counted but does not get the message; one that joins in between may get
// it). Each
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
