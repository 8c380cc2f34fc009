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
	t  idTable[*Conn]
	_  [8]byte // keep neighbouring shards' locks off one cache line
}

func newRegistry() *registry { return new(registry) }

// tableID is c's key in the registry: its id, which never changes.
func (c *Conn) tableID() uint64 { return c.lc.ID() }

func (r *registry) shard(id uint64) *regShard { return &r.shards[id%regShards] }

func (r *registry) add(c *Conn) {
	sh := r.shard(c.lc.ID())
	sh.mu.Lock()
	n := sh.t.n
	sh.t.put(c)
	added := sh.t.n > n // else c replaced a Conn of its id (cannot happen)
	sh.mu.Unlock()
	if added {
		r.n.Add(1)
	}
}

func (r *registry) remove(c *Conn) {
	sh := r.shard(c.lc.ID())
	sh.mu.Lock()
	ok := sh.t.remove(c)
	sh.mu.Unlock()
	if ok {
		r.n.Add(-1)
	}
}

func (r *registry) get(id uint64) *Conn {
	sh := r.shard(id)
	sh.mu.RLock()
	c := sh.t.get(id)
	sh.mu.RUnlock()
	return c
}

// each calls fn for every registered connection, shard by shard (under
// the shard's read lock: fn must not block), until fn returns false.
func (r *registry) each(fn func(*Conn) bool) {
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.RLock()
		more := sh.t.each(fn)
		sh.mu.RUnlock()
		if !more {
			return
		}
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
