package gateway

import "github.com/upgate/upgate/loop"

// subscriber is one membership of a topic: an entry of the topic's
// subscriber list, which a publish walks to write its frame to lc. A
// connection of a pubsub or bridge route with a topic is a subscriber of
// it (Conn.subscription); each topic its authorisation joined it to adds
// one more (Conn.joined), for the same connection.
type subscriber struct {
	lc    *loop.Conn // the connection the topic's messages are written to
	conn  *Conn
	group int32    // the subscriber group: the index of the connection's loop
	topic *topic   // set by subscribe
	pos   int      // index in the topic's group, under the topic's shard lock
	z     zprofile // how the connection takes compressed publishes; set by subscribe
}

// joinTopics subscribes c to the topics its authorisation named, besides
// its route's: one subscriber each, on c's loop.
func (g *Gateway) joinTopics(c *Conn) {
	for _, name := range c.joins {
		if name == c.topicName {
			continue
		}
		dup := false
		for _, s := range c.joined {
			if s.topic.name == name {
				dup = true
			}
		}
		if dup {
			continue
		}
		s := &subscriber{lc: c.lc, conn: c, group: c.subscription.group}
		g.topics.subscribe(g.topics.intern([]byte(name)), s)
		c.joined = append(c.joined, s)
	}
}
