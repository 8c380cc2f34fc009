//go:build !linux

package tunnel

import (
	"context"
	"time"
)

// Reactor runs tunnels; on this system New always fails.
type Reactor struct{}

// Tunnel is one pair of spliced sockets; on this system there are none.
type Tunnel struct{}

// New returns ErrUnsupported: tunnels need Linux's epoll and splice.
func New(o Options) (*Reactor, error) { return nil, ErrUnsupported }

// Splice returns ErrUnsupported.
func (r *Reactor) Splice(a, b int, prefix []byte, mode Mode, onEnd func(t *Tunnel, err error)) (*Tunnel, error) {
	return nil, ErrUnsupported
}

// Len returns 0.
func (r *Reactor) Len() int { return 0 }

// Each calls nothing.
func (r *Reactor) Each(fn func(*Tunnel) bool) {}

// Shutdown returns nil.
func (r *Reactor) Shutdown(ctx context.Context) error { return nil }

// ID returns 0.
func (t *Tunnel) ID() uint64 { return 0 }

// Mode returns Raw.
func (t *Tunnel) Mode() Mode { return Raw }

// Opened returns the zero time.
func (t *Tunnel) Opened() time.Time { return time.Time{} }

// BytesAB returns 0.
func (t *Tunnel) BytesAB() int64 { return 0 }

// BytesBA returns 0.
func (t *Tunnel) BytesBA() int64 { return 0 }

// Buffered returns 0.
func (t *Tunnel) Buffered() int64 { return 0 }

// Close does nothing.
func (t *Tunnel) Close() {}
