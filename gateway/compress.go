package gateway

import (
	"sync"
	"sync/atomic"

	"github.com/gobwas/ws"

	"github.com/upgate/upgate/loop"
	"github.com/upgate/upgate/loop/deflate"
	"github.com/upgate/upgate/loop/frame"
)

// Compressed publishes. A subscriber whose connection negotiated
// permessage-deflate takes a publish compressed when the payload reaches
// its threshold. Without context takeover a compressed message depends only
// on the payload, the compression level and the server's window bits, so a
// publish is compressed once per distinct (level, window bits) that its
// subscribers need, on the publishing goroutine, with a Compressor from the
// gateway's deflate.Pool, into a frame with RSV1 set that, like the plain
// frame, is shared by every subscriber that takes it on every loop.
//
// To know what to compress without walking its subscribers, a topic counts
// them by profile (level, window bits, threshold) in an immutable set
// behind an atomic pointer (zkinds), replaced under the topic's shard lock
// when a subscriber that negotiated deflate comes or goes; nil, the common
// case, costs a publish one atomic load. A publish reads the set before the
// subscriber snapshots it delivers to, so a subscriber that joined in
// between may find no frame for its profile: it then gets the plain frame,
// which every connection may receive (RFC 7692 §6 lets a sender choose per
// message). The plain frame is therefore always encoded.

// zprofile is how a subscriber takes compressed publishes; the zero value,
// for a connection that did not negotiate permessage-deflate, takes none.
// Comparable: subscribers of equal profiles get the same frames.
type zprofile struct {
	min   uint32 // the threshold: the smallest payload compressed
	level int8
	bits  int8 // server window bits, 8..15; 0 for no deflate
}

// profileOf returns the profile of lc, from its agreement at the 101. Any
// goroutine, from OnOpen on (see loop.Conn.Compression).
func profileOf(lc loop.Conn) zprofile {
	cz := lc.Compression()
	if !cz.Enabled {
		return zprofile{}
	}
	return zprofile{min: uint32(cz.Threshold), level: int8(cz.Level), bits: int8(cz.Params.ServerMaxWindowBits())}
}

// takes reports whether a subscriber of profile p takes a payload of n
// bytes compressed.
func (p zprofile) takes(n int) bool { return p.bits != 0 && uint64(n) >= uint64(p.min) }

// zkind is a profile and how many of a topic's subscribers have it.
type zkind struct {
	p zprofile
	n int
}

// zkinds is the set of the profiles of a topic's subscribers that
// negotiated permessage-deflate. The profiles of a set never change, so
// publishes read them without a lock; the counts are read and written
// under the topic's shard lock only.
type zkinds struct{ k []zkind }

// add returns a set with the count of p moved by d (+1 or -1), nil when
// empty; z may be nil. A count that moves and stays above zero moves in
// place (no allocation); a profile that comes or goes makes a new set.
// Under the topic's shard lock.
func (z *zkinds) add(p zprofile, d int) *zkinds {
	if z != nil {
		for i := range z.k {
			if e := &z.k[i]; e.p == p && e.n+d > 0 {
				e.n += d
				return z
			}
		}
	}
	var old []zkind
	if z != nil {
		old = z.k
	}
	k := make([]zkind, 0, len(old)+1)
	found := false
	for _, e := range old {
		if e.p == p {
			found = true
			e.n += d
		}
		if e.n > 0 {
			k = append(k, e)
		}
	}
	if !found && d > 0 {
		k = append(k, zkind{p, d})
	}
	if len(k) == 0 {
		return nil
	}
	return &zkinds{k}
}

// zframe is one publish compressed for a (level, window bits).
type zframe struct {
	level, bits int8
	buf         []byte // the whole frame, RSV1 set
}

// zframes are the compressed frames of one publish; immutable once the
// publish hands them over, shared like the plain frame.
type zframes struct {
	n  int // payload length, for the subscribers' thresholds
	f  []zframe
	f0 [2]zframe // f's first array: one allocation for the usual one or two
}

// queued returns the bytes of z's compressed frames; 0 for a nil z.
func (z *zframes) queued() int {
	if z == nil {
		return 0
	}
	n := 0
	for i := range z.f {
		n += len(z.f[i].buf)
	}
	return n
}

// frameFor returns the frame for a subscriber of profile p: the compressed
// one it takes, or plain. z may be nil.
func (z *zframes) frameFor(p zprofile, plain []byte) []byte {
	if z == nil || !p.takes(z.n) {
		return plain
	}
	for i := range z.f {
		if z.f[i].level == p.level && z.f[i].bits == p.bits {
			return z.f[i].buf
		}
	}
	return plain
}

// has reports whether z holds a compressed frame for profile p, which
// takes z's payload. z may be nil.
func (z *zframes) has(p zprofile) bool { return z.frameFor(p, nil) != nil }

// zpublisher compresses publishes.
type zpublisher struct {
	pool  deflate.Pool
	count atomic.Uint64 // compressed frames made
}

// zscratch holds compression output before it is copied into a frame of
// the right size. Buffers over zscratchKeep are not kept.
var zscratch = sync.Pool{New: func() any { return new([]byte) }}

const zscratchKeep = 1 << 20

// compress returns the compressed frames of a publish of op and payload to
// t: one per (level, window bits) of t's subscribers whose threshold
// payload reaches; nil when none does. A profile whose compression fails
// gets the plain frame. Any goroutine.
func (g *Gateway) compress(t *topic, op OpCode, payload []byte) *zframes {
	ks := t.zk.Load()
	if ks == nil {
		return nil
	}
	n := len(payload)
	var z *zframes
	for _, k := range ks.k {
		if !k.p.takes(n) || z.has(k.p) {
			continue
		}
		buf, err := g.zpub.frame(ws.OpCode(op), k.p, payload)
		if err != nil {
			continue
		}
		if z == nil {
			z = &zframes{n: n}
			z.f = z.f0[:0]
		}
		z.f = append(z.f, zframe{k.p.level, k.p.bits, buf})
	}
	return z
}

// frame returns a frame of op holding payload compressed for profile p,
// RSV1 set, in a buffer of its own of exactly its size.
func (zp *zpublisher) frame(op ws.OpCode, p zprofile, payload []byte) ([]byte, error) {
	c, err := zp.pool.Get(int(p.level), int(p.bits))
	if err != nil {
		return nil, err
	}
	sp := zscratch.Get().(*[]byte)
	out, err := c.Compress((*sp)[:0], payload)
	zp.pool.Put(c)
	var buf []byte
	if err == nil {
		buf = make([]byte, 0, frame.HeaderLen(len(out))+len(out))
		buf = frame.AppendHeader(buf, op, true, len(out))
		buf[0] |= 0x40 // RSV1: compressed (RFC 7692 §6)
		buf = append(buf, out...)
		zp.count.Add(1)
	}
	if cap(out) <= zscratchKeep {
		*sp = out[:0]
	} else {
		*sp = nil
	}
	zscratch.Put(sp)
	return buf, err
}
