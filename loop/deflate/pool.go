package deflate

import "sync"

// nLevels and nBits size the tables indexed by (level, window bits).
const (
	nLevels = MaxLevel - MinLevel + 1
	nBits   = MaxWindowBits - MinWindowBits + 1
)

// slot returns the table index of (level, windowBits), or -1 when either is
// out of range.
func slot(level, windowBits int) int {
	if level < MinLevel || level > MaxLevel || windowBits < MinWindowBits || windowBits > MaxWindowBits {
		return -1
	}
	return (level-MinLevel)*nBits + windowBits - MinWindowBits
}

// Loop holds the codecs of one event loop. Without context takeover a
// connection needs a Compressor or Decompressor only while it (de)compresses
// one message, and a loop runs one connection's callback at a time, so one
// Decompressor and one Compressor per (level, window bits) in use serve all
// its connections: a connection that negotiated permessage-deflate holds no
// codec state between messages. Codecs are created on first use and kept.
//
// Loop is not safe for concurrent use; its zero value is ready.
type Loop struct {
	d *Decompressor
	c [nLevels * nBits]*Compressor
}

// Decompressor returns the loop's Decompressor.
func (l *Loop) Decompressor() *Decompressor {
	if l.d == nil {
		l.d = NewDecompressor()
	}
	return l.d
}

// Compressor returns the loop's Compressor for level and windowBits, or
// ErrLevel or ErrWindowBits when they are out of range.
func (l *Loop) Compressor(level, windowBits int) (*Compressor, error) {
	i := slot(level, windowBits)
	if i < 0 {
		return nil, checkArgs(level, windowBits)
	}
	if l.c[i] == nil {
		c, err := NewCompressor(level, windowBits)
		if err != nil {
			return nil, err
		}
		l.c[i] = c
	}
	return l.c[i], nil
}

// Pool shares Compressors between goroutines, for messages compressed off
// the event loops (a message published to many connections is compressed
// once). It keeps one sync.Pool per (level, window bits), so idle
// Compressors are released by the garbage collector like any sync.Pool's.
//
// Pool is safe for concurrent use; its zero value is ready. It must not be
// copied after first use.
type Pool struct {
	p [nLevels * nBits]sync.Pool
}

// Get returns a Compressor for level and windowBits, from the pool or new,
// or ErrLevel or ErrWindowBits when they are out of range. Give it back with
// Put when the message is compressed.
func (p *Pool) Get(level, windowBits int) (*Compressor, error) {
	i := slot(level, windowBits)
	if i < 0 {
		return nil, checkArgs(level, windowBits)
	}
	if c, ok := p.p[i].Get().(*Compressor); ok {
		return c, nil
	}
	return NewCompressor(level, windowBits)
}

// Put returns c to the pool. c must not be used afterwards.
func (p *Pool) Put(c *Compressor) {
	if c == nil {
		return
	}
	p.p[slot(c.level, c.bits)].Put(c)
}

// checkArgs returns the error for an out-of-range level or windowBits.
func checkArgs(level, windowBits int) error {
	if level < MinLevel || level > MaxLevel {
		return ErrLevel
	}
	if windowBits < MinWindowBits || windowBits > MaxWindowBits {
		return ErrWindowBits
	}
	return nil
}
