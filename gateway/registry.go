package gateway

import (
	"sync"
	"sync/atomic"
)

// regShards spreads the connection registry over independent locks:
// connections are added and removed by every event loop at once.
const regShards = 64

// registry maps connection ids to open connections. Safe for concurrent
// use; a lookup takes one shard's read lock.
type registry struct {
	shards [regShards]regShard
	n      atomic.Int64
}

type regShard struct {
	mu sync.RWMutex
	m  map[uint64]*Conn
	_  [32]byte // keep neighbouring shards' locks off one cache line
}

func newRegistry() *registry {
	r := new(registry)
	for i := range r.shards {
		r.shards[i].m = make(map[uint64]*Conn)
	}
	return r
}

func (r *registry) shard(id uint64) *regShard { return &r.shards[id%regShards] }

func (r *registry) add(c *Conn) {
	id := c.lc.ID()
	sh := r.shard(id)
	sh.mu.Lock()
	sh.m[id] = c
	sh.mu.Unlock()
	r.n.Add(1)
}

func (r *registry) remove(c *Conn) {
	id := c.lc.ID()
	sh := r.shard(id)
	sh.mu.Lock()
	if sh.m[id] == c {
		delete(sh.m, id)
		r.n.Add(-1)
	}
	sh.mu.Unlock()
}

func (r *registry) get(id uint64) *Conn {
	sh := r.shard(id)
	sh.mu.RLock()
	c := sh.m[id]
	sh.mu.RUnlock()
	return c
}

// each calls fn for every registered connection, shard by shard (under
// the shard's read lock: fn must not block), until fn returns false.
func (r *registry) each(fn func(*Conn) bool) {
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.RLock()
		for _, c := range sh.m {
			if !fn(c) {
				sh.mu.RUnlock()
				return
			}
		}
		sh.mu.RUnlock()
	}
}

// Conn returns the open connection with this id, or nil. Any goroutine.
func (g *Gateway) Conn(id uint64) *Conn { return g.conns.get(id) }

// Connections returns the number of open WebSocket connections. Any
// goroutine.
func (g *Gateway) Connections() int { return int(g.conns.n.Load()) }

// Send sends one message to the connection with this id: see Conn.Send for
// op and payload. It returns ErrUnknownConn when no such connection is open.
// Any goroutine.
func (g *Gateway) Send(id uint64, op OpCode, payload []byte) error {
	c := g.conns.get(id)
	if c == nil {
		return ErrUnknownConn
	}
	return c.Send(op, payload)
}

// Disconnect starts the close handshake of the connection with this id,
// with code and reason: see Conn.Close. It returns ErrUnknownConn when no
// such connection is open. Any goroutine.
func (g *Gateway) Disconnect(id uint64, code StatusCode, reason string) error {
	c := g.conns.get(id)
	if c == nil {
		return ErrUnknownConn
	}
	return c.Close(code, reason)
}
