package gateway

import "github.com/upgate/upgate/loop"

// subscriber is one membership of a topic: an entry of the topic's
// subscriber list, which a publish walks to write its frame to lc. A
// connection of a pubsub or bridge route with a topic is a subscriber of
// it (connState.member); each topic its authorisation joined it to adds
// one more (connExtra.joined), for the same connection. A connState with
// a subscriber is never reused (stKeep): snapshots of subscriber lists
// may still hold it after its connection ended.
type subscriber struct {
	lc    loop.Conn // the connection the topic's messages are written to
	topic *topic    // set by subscribe
	z     zprofile  // how the connection takes compressed publishes; set by subscribe
	group int32     // the subscriber group: the index of the connection's loop
	pos   int32     // index in the topic's group, under the topic's shard lock
}

// joinTopics subscribes c to the topics its authorisation named, besides
// its route's: one subscriber each, on c's loop.
func (g *Gateway) joinTopics(c *connState, x *connExtra) {
	for _, name := range x.joins {
		if name == c.topicName {
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
		g.topics.subscribe(g.topics.intern([]byte(name)), s)
		x.joined = append(x.joined, s)
	}
}
