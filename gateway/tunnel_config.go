package gateway

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/upgate/upgate/tunnel"
)

// Tunnel behaviours.
const (
	// TCP accepts "Upgrade: tcp" and splices the connection to a new TCP
	// connection to Route.Upstream: the client speaks the upstream's
	// protocol over it, byte for byte.
	TCP Behaviour = "tcp"
	// Websockify accepts WebSocket handshakes (subprotocol "binary" when
	// offered) and carries the binary messages of the connection to and
	// from Route.Upstream as a byte stream, as noVNC and browser SSH
	// clients expect. A text message is answered 1003.
	Websockify Behaviour = "websockify"
)

// Tunnels sets the tunnel reactor shared by the TCP and Websockify routes.
// Zero values take the defaults.
type Tunnels struct {
	// Buffer is the bytes in flight per direction of a tcp tunnel, the
	// capacity of its kernel pipe: a side whose peer reads slower stops
	// being read once it is full. Default 1 MiB (as Go's own splice
	// pipes), 4 KiB to 1 MiB; a pipe beyond an unprivileged user's quota
	// (fs.pipe-user-pages-soft) keeps the kernel's 64 KiB. Websockify
	// tunnels use 64 KiB buffers of the process.
	Buffer int `yaml:"buffer"`
	// IdleTimeout ends a tunnel silent both ways for this long; 0: never.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// DrainTimeout bounds how long the other direction of a tunnel goes
	// on once one side sent FIN (half-close). Default 60 s.
	DrainTimeout time.Duration `yaml:"drain_timeout"`
	// Reactors is the number of reactor goroutines; 0: one per CPU.
	Reactors int `yaml:"reactors"`
}

// validateTunnels checks the tunnel settings and the tunnel fields of the
// routes.
func (c *Config) validateTunnels() error {
	t := c.Tunnels
	if t.Buffer != 0 && (t.Buffer < tunnel.MinPipeSize || t.Buffer > tunnel.MaxPipeSize) {
		return bad("tunnels.buffer", "want 0 (%d) or %d to %d bytes, got %d", tunnel.DefaultPipeSize, tunnel.MinPipeSize, tunnel.MaxPipeSize, t.Buffer)
	}
	if t.IdleTimeout < 0 {
		return bad("tunnels.idle_timeout", "want 0 (none) or a positive duration, got %s", t.IdleTimeout)
	}
	if t.DrainTimeout < 0 {
		return bad("tunnels.drain_timeout", "want 0 (%s) or a positive duration, got %s", tunnel.DefaultDrainTimeout, t.DrainTimeout)
	}
	if t.Reactors < 0 || t.Reactors > tunnel.MaxReactors {
		return bad("tunnels.reactors", "want 0 (one per CPU) to %d, got %d", tunnel.MaxReactors, t.Reactors)
	}
	for i, r := range c.Routes {
		key := fmt.Sprintf("routes[%d]", i)
		isTunnel := r.Behaviour == TCP || r.Behaviour == Websockify
		switch {
		case isTunnel && r.Upstream == "":
			return bad(key+".upstream", "a %s route needs an upstream HOST:PORT", r.Behaviour)
		case !isTunnel && r.Upstream != "":
			return bad(key+".upstream", "only tcp and websockify routes have an upstream, this one is %s", r.Behaviour)
		case !isTunnel && (r.ConnectTimeout != 0 || r.MaxTunnels != 0):
			return bad(key+".behaviour", "connect_timeout and max_tunnels are for tcp and websockify routes, this one is %s", r.Behaviour)
		case r.ConnectTimeout < 0:
			return bad(key+".connect_timeout", "want 0 (%s) or a positive duration, got %s", DefaultConnectTimeout, r.ConnectTimeout)
		case r.MaxTunnels < 0:
			return bad(key+".max_tunnels", "want 0 (limits.max_connections only) or more, got %d", r.MaxTunnels)
		}
		if isTunnel {
			host, port, err := net.SplitHostPort(r.Upstream)
			if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
				return bad(key+".upstream", "want HOST:PORT, got %q", r.Upstream)
			}
		}
		if r.Behaviour == TCP && len(r.Subprotocols) > 0 {
			return bad(key+".subprotocols", "a tcp route speaks no WebSocket")
		}
	}
	return nil
}

// bad returns the *ConfigError of key.
func bad(key, format string, a ...any) error {
	return &ConfigError{Key: key, Reason: fmt.Sprintf(format, a...)}
}
