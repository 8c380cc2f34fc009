package gateway

import (
	"strconv"

	"github.com/upgate/upgate/gateway/bus"
)

// FleetStatus is a node's place in its fleet, as Gateway.FleetStatus
// reports it.
type FleetStatus struct {
	// Node is the node's id in the fleet.
	Node string
	// Prefix starts every subject.
	Prefix string
	// Bus is the state of the connection to NATS: "connecting",
	// "connected", "reconnecting" or "closed".
	Bus string
	// NATS is the client URL of the NATS server the gateway embeds, where
	// backends connect, nats://host:port; "" when it joins external
	// servers.
	NATS string
	// Cluster is the route URL of the embedded server, for the other
	// nodes' NATS.Cluster, nats://host:port; "" without a cluster.
	Cluster string
}

// Connected reports whether the node is connected to NATS.
func (s FleetStatus) Connected() bool { return s.Bus == bus.StateConnected.String() }

// FleetStatus returns the node's place in its fleet: the zero FleetStatus
// without Config.NATS; NATS and Cluster are known once Start returned. Any
// goroutine.
func (g *Gateway) FleetStatus() FleetStatus {
	if g.bus == nil {
		return FleetStatus{}
	}
	s := FleetStatus{Node: g.bus.Node(), Prefix: g.bus.Subjects().Prefix(), Bus: g.bus.State().String()}
	if srv := g.bus.Server(); srv != nil {
		s.NATS, s.Cluster = srv.ClientURL(), srv.ClusterURL()
	}
	return s
}

// NodeID returns the node's id in the fleet, "" without Config.NATS. Any
// goroutine.
func (g *Gateway) NodeID() string {
	if g.bus == nil {
		return ""
	}
	return g.bus.Node()
}

// FleetID returns the connection's id in the fleet, "<node>.<id>", as
// backends address it on the bus; without Config.NATS, the decimal ID. Any
// goroutine.
func (c Conn) FleetID() string {
	rt := c.routeOf()
	if rt == nil || rt.g.bus == nil {
		return strconv.FormatUint(c.ID(), 10)
	}
	return rt.g.bus.Subjects().FleetID(c.ID())
}
