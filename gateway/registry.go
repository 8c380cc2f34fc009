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
	t  idTable[*connState]
	_  [8]byte // keep neighbouring shards' locks off one cache line
}

func newRegistry() *registry { return new(registry) }

// tableID is c's key in the registry: its connection's id, which never
// changes while c is registered (from OnOpen to OnClose).
func (c *connState) tableID() uint64 { return c.member.lc.ID() }

func (r *registry) shard(id uint64) *regShard { return &r.shards[id%regShards] }

func (r *registry) add(c *connState) {
	sh := r.shard(c.tableID())
	sh.mu.Lock()
	n := sh.t.n
	sh.t.put(c)
	added := sh.t.n > n // else c replaced a Conn of its id (cannot happen)
	sh.mu.Unlock()
	if added {
		r.n.Add(1)
	}
}

func (r *registry) remove(c *connState) {
	sh := r.shard(c.tableID())
	sh.mu.Lock()
	ok := sh.t.remove(c)
	sh.mu.Unlock()
	if ok {
		r.n.Add(-1)
	}
}

// get returns the handle of the open connection with this id, the zero
// Conn when none. The handle is made under the shard's lock, which orders
// the read of the state after the OnRequest that wrote it and before any
// reuse (which follows the state's removal, under the same lock).
func (r *registry) get(id uint64) Conn {
	sh := r.shard(id)
	sh.mu.RLock()
	var h Conn
	if c := sh.t.get(id); c != nil {
		h = c.handle()
	}
	sh.mu.RUnlock()
	return h
}

// each calls fn for every registered connection, shard by shard (under
// the shard's read lock: fn must not block), until fn returns false.
func (r *registry) each(fn func(Conn) bool) {
	visit := func(c *connState) bool { return fn(c.handle()) }
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.RLock()
		more := sh.t.each(visit)
		sh.mu.RUnlock()
		if !more {
			return
		}
	}
}

// Conn returns the handle of the open connection with this id; false when
// none is open. Any goroutine.
func (g *Gateway) Conn(id uint64) (Conn, bool) {
	c := g.conns.get(id)
	return c, !c.IsZero()
}

// Connections returns the number of open WebSocket connections. Any
// goroutine.
func (g *Gateway) Connections() int { return int(g.conns.n.Load()) }

// Send sends one message to the connection with this id: see Conn.Send for
// op and payload. It returns ErrUnknownConn when no such connection is open.
// Any goroutine.
func (g *Gateway) Send(id uint64, op OpCode, payload []byte) error {
	c := g.conns.get(id)
	if c.IsZero() {
		return ErrUnknownConn
	}
	return c.Send(op, payload)
}

// Disconnect starts the close handshake of the connection with this id,
// with code and reason: see Conn.Close. It returns ErrUnknownConn when no
// such connection is open. Any goroutine.
func (g *Gateway) Disconnect(id uint64, code StatusCode, reason string) error {
	c := g.conns.get(id)
	if c.IsZero() {
		return ErrUnknownConn
	}
	return c.Close(code, reason)
}
