package gateway

// joinTopics subscribes c to the topics its authorisation named, besides
// its route's: each membership is a Conn of its own in the topic's
// subscriber list, sharing c's connection.
func (g *Gateway) joinTopics(c *Conn) {
	for _, name := range c.joins {
		if name == c.topicName {
			continue
		}
		dup := false
		for _, m := range c.members {
			if m.topicName == name {
				dup = true
			}
		}
		if dup {
			continue
		}
		m := &Conn{lc: c.lc, g: g, rt: c.rt, kind: c.kind, group: c.group, member: true,
			topicName: g.topics.intern([]byte(name)), sub: c.sub, client: c.client, user: c.user}
		m.topic = g.topics.subscribe(m.topicName, m)
		c.members = append(c.members, m)
	}
}
