package tunnel

import (
	"errors"
	"fmt"
	"runtime"
	"time"
)

// Mode says how side A of a tunnel carries the stream.
type Mode uint8

const (
	// Raw splices the bytes of A and B unchanged, both ways.
	Raw Mode = iota
	// WebSocket treats A as the client of an RFC 6455 connection whose
	// opening handshake is done: the payload of A's binary messages is the
	// stream toward B, and each read from B goes to A as one binary frame.
	WebSocket
)

// String returns "raw" or "websocket".
func (m Mode) String() string {
	switch m {
	case Raw:
		return "raw"
	case WebSocket:
		return "websocket"
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// Limits and defaults of Options.
const (
	// DefaultPipeSize is the size of Go's own splice pipes (net, for
	// io.Copy between TCP connections): with 64 KiB pipes a tunnel took
	// 1.3 to 2.1 times the CPU per MiB of a Go io.Copy proxy, with 1 MiB
	// about the same (bench/README.md, Tunnels). A pipe holds pages only
	// for the bytes in it.
	DefaultPipeSize = 1 << 20
	// DefaultBufferSize is the buffer of each direction of a WebSocket
	// mode tunnel, taken from a pool while bytes are in flight.
	DefaultBufferSize   = 64 << 10
	MinPipeSize         = 4 << 10
	MaxPipeSize         = 1 << 20 // Linux's default /proc/sys/fs/pipe-max-size
	DefaultDrainTimeout = 60 * time.Second
	// DefaultMaxPipes keeps 64 MiB of idle pipe capacity at the default
	// size: the kernel's quota of pipe buffers for an unprivileged user
	// (fs.pipe-user-pages-soft), which idle pipes count in.
	DefaultMaxPipes = 64
	MaxMaxPipes     = 1 << 16
	MaxReactors     = 256
)

// Options configures a Reactor. The zero value is usable.
type Options struct {
	// Reactors is the number of epoll goroutines; 0 means
	// runtime.GOMAXPROCS(0). At most MaxReactors.
	Reactors int
	// PipeSize bounds the bytes in flight per direction of a Raw tunnel:
	// the capacity of its pipe (F_SETPIPE_SZ; the kernel rounds it up to
	// a power-of-two number of pages). 0 means DefaultPipeSize; otherwise
	// it must lie in [MinPipeSize, MaxPipeSize]. A pipe the kernel refuses
	// to grow (beyond an unprivileged user's quota of pipe buffers,
	// fs.pipe-user-pages-soft) keeps its default capacity, 64 KiB.
	PipeSize int
	// BufferSize bounds the bytes in flight per direction of a WebSocket
	// mode tunnel: the size of its buffers, which live in the process. 0
	// means DefaultBufferSize; otherwise within [MinPipeSize, MaxPipeSize].
	BufferSize int
	// IdleTimeout ends a tunnel through which no byte moved, either way,
	// for this long. 0 means no limit.
	IdleTimeout time.Duration
	// DrainTimeout bounds how long a tunnel goes on once one of its sides
	// has ended (EOF, a close frame, or a close started by the tunnel).
	// 0 means DefaultDrainTimeout.
	DrainTimeout time.Duration
	// MaxPipes is the number of idle pipes a Reactor keeps for reuse,
	// shared evenly among its reactors. 0 means DefaultMaxPipes; at most
	// MaxMaxPipes.
	MaxPipes int
}

// Errors reported by the package, to Splice's caller or to a tunnel's
// onEnd.
var (
	// ErrUnsupported is returned by New on systems other than Linux.
	ErrUnsupported = errors.New("tunnel: only supported on Linux")
	// ErrClosed: the Reactor is shut down (Splice), or the tunnel was
	// ended by Tunnel.Close (onEnd).
	ErrClosed = errors.New("tunnel: closed")
	// ErrShutdown: the tunnel was ended by Reactor.Shutdown.
	ErrShutdown = errors.New("tunnel: reactor shut down")
	// ErrIdleTimeout: no byte moved for Options.IdleTimeout.
	ErrIdleTimeout = errors.New("tunnel: idle timeout")
	// ErrDrainTimeout: the tunnel did not finish within
	// Options.DrainTimeout of one side's end.
	ErrDrainTimeout = errors.New("tunnel: drain timeout")
	// ErrMode: Splice was given an unknown Mode.
	ErrMode = errors.New("tunnel: unknown mode")
)

// normalize returns o with defaults filled in, or an error naming the first
// field out of bounds.
func (o Options) normalize() (Options, error) {
	switch {
	case o.Reactors < 0 || o.Reactors > MaxReactors:
		return o, fmt.Errorf("tunnel: Reactors is %d; want 0 to %d", o.Reactors, MaxReactors)
	case o.PipeSize != 0 && (o.PipeSize < MinPipeSize || o.PipeSize > MaxPipeSize):
		return o, fmt.Errorf("tunnel: PipeSize is %d; want 0 or %d to %d", o.PipeSize, MinPipeSize, MaxPipeSize)
	case o.BufferSize != 0 && (o.BufferSize < MinPipeSize || o.BufferSize > MaxPipeSize):
		return o, fmt.Errorf("tunnel: BufferSize is %d; want 0 or %d to %d", o.BufferSize, MinPipeSize, MaxPipeSize)
	case o.IdleTimeout < 0:
		return o, fmt.Errorf("tunnel: IdleTimeout is %v; want 0 or more", o.IdleTimeout)
	case o.DrainTimeout < 0:
		return o, fmt.Errorf("tunnel: DrainTimeout is %v; want 0 or more", o.DrainTimeout)
	case o.MaxPipes < 0 || o.MaxPipes > MaxMaxPipes:
		return o, fmt.Errorf("tunnel: MaxPipes is %d; want 0 to %d", o.MaxPipes, MaxMaxPipes)
	}
	if o.Reactors == 0 {
		o.Reactors = min(runtime.GOMAXPROCS(0), MaxReactors)
	}
	if o.BufferSize == 0 {
		o.BufferSize = DefaultBufferSize
	}
	if o.PipeSize == 0 {
		o.PipeSize = DefaultPipeSize
	}
	if o.DrainTimeout == 0 {
		o.DrainTimeout = DefaultDrainTimeout
	}
	if o.MaxPipes == 0 {
		o.MaxPipes = DefaultMaxPipes
	}
	return o, nil
}

// tick returns how often a reactor checks its tunnels' timers: a quarter of
// the shortest timeout, between 10 ms and 1 s.
func (o Options) tick() time.Duration {
	d := o.DrainTimeout
	if o.IdleTimeout > 0 {
		d = min(d, o.IdleTimeout)
	}
	return min(max(d/4, 10*time.Millisecond), time.Second)
}
