package gateway

import (
	"errors"
	"math"
	"net/netip"
	"strings"

	"github.com/upgate/upgate/gateway/bus"
	"github.com/upgate/upgate/loop"
)

// The gateway's side of its bus (package bus): the bus made from
// Config.NATS, the connections and topics it delivers to (busLocal), and
// what the gateway tells it of its connections.

// newBus prepares the gateway's bus from the configuration.
func (g *Gateway) newBus() error {
	n := g.cfg.NATS
	o := bus.Options{
		Prefix:      n.Prefix,
		Node:        n.NodeID,
		AuthTimeout: n.AuthTimeout,
		QueueLen:    n.Queue,
		Logger:      g.log,
	}
	if n.embedded() {
		o.StartServer = g.natsStarter
		o.Embedded = &bus.ServerOptions{
			Listen:        n.Listen,
			ClusterListen: n.ClusterListen,
			ClusterName:   n.ClusterName,
			Routes:        n.Cluster,
			// Room for a largest message and its headers, clamped in
			// int64: max_message allows 2 GiB, past a 32-bit int.
			MaxPayload: int(min(max(g.cfg.Limits.MaxMessage+64<<10, 1<<20), math.MaxInt32)),
		}
	} else {
		o.URLs = n.Servers
	}
	b, err := bus.New(o, (*busLocal)(g))
	if err != nil {
		return err
	}
	g.bus = b
	g.topics.watch = func(topic string, on bool) {
		if on {
			b.Watch(topic)
		} else {
			b.Unwatch(topic)
		}
	}
	for _, h := range n.AuthHeaders {
		g.authHeaders = append(g.authHeaders, strings.ToLower(h))
	}
	return nil
}

// routeSubject returns the bridge subject of a route, or "".
func (g *Gateway) routeSubject(r *Route) string {
	if r.Behaviour != Bridge || g.bus == nil {
		return ""
	}
	s := r.Subject
	if s == "" {
		s, _ = bus.RouteSubject(r.Path)
	}
	return g.bus.Subjects().In(s)
}

// busOpened tells the bus about a connection that opened: its description
// for bridged messages, and the open event.
func (g *Gateway) busOpened(c *connState) {
	x := c.extra()
	rt, h := c.route(), c.handle()
	path := rt.Path
	if x.req != nil {
		path = x.req.Path
	}
	x.bc = g.bus.NewConn(h.ID(), rt.Path, g.routeSubject(&rt.Route), remoteString(h.lc, h.ClientAddr()), h.Subprotocol(), c.topic(), x.user, path)
	g.bus.Event(bus.EventOpen, x.bc, 0)
}

// busConn returns the connection's description on the bus, nil without
// one. On the connection's loop.
func (c *connState) busConn() *bus.Conn {
	if x := c.x.Load(); x != nil {
		return x.bc
	}
	return nil
}

// busReady reports whether the bus, if any, is connected, and its state.
func (g *Gateway) busReady() (bool, string) {
	if g.bus == nil {
		return true, ""
	}
	s := g.bus.State()
	return s == bus.StateConnected, s.String()
}

// busLocal is the Gateway seen by its bus: deliveries to this node's
// connections and topics.
type busLocal Gateway

var _ bus.Local = (*busLocal)(nil)

func (l *busLocal) Deliver(n uint64, op bus.OpCode, payload []byte) error {
	return busError((*Gateway)(l).Send(n, OpCode(op), payload))
}

func (l *busLocal) Disconnect(n uint64, code uint16, reason string) error {
	return busError((*Gateway)(l).Disconnect(n, StatusCode(code), reason))
}

func (l *busLocal) Fanout(topic string, op bus.OpCode, payload []byte) (int, error) {
	g := (*Gateway)(l)
	t := g.topics.lookup(topic)
	if t == nil {
		return 0, nil
	}
	if g.behind(t, -1, len(payload)) {
		g.stats.refused[srcBus].Add(1)
		return 0, bus.ErrLoopBehind
	}
	n := g.fanout(t, OpCode(op), payload, -1)
	g.stats.busDelivered.Add(uint64(n))
	return n, nil
}

// busError maps the gateway's errors onto the bus's.
func busError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrUnknownConn):
		return bus.ErrUnknownConn
	case errors.Is(err, ErrSlowConsumer):
		return bus.ErrSlowConsumer
	case errors.Is(err, ErrClosed), errors.Is(err, loop.ErrNotOpen):
		return bus.ErrConnClosed
	}
	return err
}

// remoteString is the client's address as the bus shows it: host:port, or
// the address alone when X-Forwarded-For named it (no port known).
func remoteString(lc loop.Conn, client netip.Addr) string {
	ap := lc.ClientAddr()
	if ap.Addr() == client && ap.Port() != 0 {
		return ap.String()
	}
	if !client.IsValid() {
		return ""
	}
	return client.String()
}
