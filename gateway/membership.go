package gateway

import (
	"slices"

	"github.com/upgate/upgate/loop"
)

// subscriber is one membership of a topic: an entry of the topic's
// subscriber list, which a publish walks to write its frame to lc. A
// connection of a pubsub or bridge route with a topic is a subscriber of
// it (connState.member); each topic its authorisation joined it to adds
// one more (connExtra.joined), for the same connection. Only the loop of
// the connection (group) reads and writes it once subscribed; OnClose
// unsubscribes it.
type subscriber struct {
	lc    loop.Conn // the connection the topic's messages are written to
	topic *topic    // set by subscribe
	z     zprofile  // how the connection takes compressed publishes; set by subscribe
	group int32     // the subscriber group: the index of the connection's loop
	pos   int32     // index in the topic's group
}

// joinTopics subscribes c to the topics its authorisation named, besides
// its route's: one subscriber each, on c's loop.
func (g *Gateway) joinTopics(c *connState, x *connExtra) {
	for _, name := range x.joins {
		if name == c.topic() {
			continue
		}
		dup := false
		for _, s := range x.joined {
			if s.topic.name == name {
				dup = true
			}
		}
		if dup {
			continue
		}
		s := &subscriber{lc: c.lc(), group: c.member.group}
		g.topics.subscribe(name, s)
		x.joined = append(x.joined, s)
	}
}

// memberOf reports whether c's connection is a subscriber of topic: its
// route's topic, or one its authorisation joined it to. Any goroutine.
func (c Conn) memberOf(topic string) bool {
	if c.Topic() == topic {
		return true
	}
	if c.s != nil {
		if x := c.s.extraOf(c.ID()); x != nil {
			return slices.Contains(x.joins, topic)
		}
	}
	return false
}
