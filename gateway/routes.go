package gateway

import (
	"bytes"

	"github.com/upgate/upgate/parser"
	"net/url"
	"sort"
	"strings"
	"unicode/utf8"
)

// maxTopicLen bounds a topic name in bytes.
const maxTopicLen = 256

// route is a configured Route with everything the handshake path needs
// resolved once: the match prefix, the normalized origins, the body of its
// plain-HTTP answer and its counters.
type route struct {
	Route
	g          *Gateway
	kind       uint8
	pattern    bool   // Path ends in "/{topic}"
	prefix     string // Path without "/{topic}" for a pattern route
	anyOrigin  bool
	origins    []string // lower case, no trailing "/"
	maxMessage int64
	plainBody  []byte // answer to a plain GET when PlainHTTP

	// permessage-deflate: on unless NoDeflate, with the route's level and
	// threshold or Config.Deflate's.
	deflate          bool
	deflateLevel     int
	deflateThreshold int
	stats            routeStats

	// Custom routes: the Handler (Route.Handler or the default) and the
	// optional interfaces it implements, nil when it does not.
	h     Handler
	authz Authorizer
	ping  PingHandler
	pong  PongHandler

	// The protocols the route accepts (setProtocols): accept for
	// SelectUpgrade, one per version, with what each switches to in
	// acceptors; offer, the Upgrade list of its 426. streams is set when
	// it accepts a protocol other than WebSocket.
	accept    []parser.Protocol
	acceptors []acceptor
	offer     []parser.Protocol
	streams   bool

	tunnels tunnelStats // tcp and websockify routes
}

// setHandler resolves a Custom route's Handler: its own, else def. It
// reports false when there is none.
func (rt *route) setHandler(def Handler) bool {
	rt.h = rt.Handler
	if rt.h == nil {
		rt.h = def
	}
	if rt.h == nil {
		return false
	}
	rt.authz, _ = rt.h.(Authorizer)
	rt.ping, _ = rt.h.(PingHandler)
	rt.pong, _ = rt.h.(PongHandler)
	return true
}

func newRoute(r Route, defaultMax int64, dflt Deflate) *route {
	rt := &route{Route: r, maxMessage: r.MaxMessage}
	if rt.maxMessage == 0 {
		rt.maxMessage = defaultMax
	}
	rt.deflate = !r.NoDeflate
	rt.deflateLevel, rt.deflateThreshold = r.DeflateLevel, r.DeflateThreshold
	if rt.deflateLevel == 0 {
		rt.deflateLevel = dflt.Level
	}
	if rt.deflateThreshold == 0 {
		rt.deflateThreshold = dflt.Threshold
	}
	switch r.Behaviour {
	case PubSub:
		rt.kind = kindPubSub
	case Custom:
		rt.kind = kindCustom
	case Bridge:
		rt.kind = kindBridge
	case Stream:
		rt.kind = kindStream
	case TCP, Websockify:
		rt.kind = kindTunnel
		if r.Behaviour == Websockify && len(r.Subprotocols) == 0 {
			rt.Subprotocols = []string{"binary"}
		}
		rt.deflate = false // the tunnel reactor speaks no permessage-deflate
	default:
		rt.kind = kindEcho
	}
	if p, ok := strings.CutSuffix(r.Path, "/{topic}"); ok {
		rt.pattern, rt.prefix = true, p
	}
	rt.anyOrigin = len(r.Origins) == 0
	for _, o := range r.Origins {
		if o == "*" {
			rt.anyOrigin = true
		}
		rt.origins = append(rt.origins, normalizeOrigin(o))
	}
	rt.plainBody = []byte("upgate: " + r.Path + " is a WebSocket endpoint (" + string(r.Behaviour) + ").\n")
	rt.stats.label = r.Path
	return rt
}

func normalizeOrigin(o string) string { return strings.ToLower(strings.TrimSuffix(o, "/")) }

// originOK reports whether a handshake with this Origin value (nil when
// absent) may open a connection on the route.
func (rt *route) originOK(origin []byte) bool {
	if rt.anyOrigin || origin == nil {
		return true
	}
	origin = bytes.TrimSuffix(origin, []byte{'/'})
	for _, o := range rt.origins {
		if len(o) == len(origin) && bytes.EqualFold(origin, []byte(o)) {
			return true
		}
	}
	return false
}

// routeTable finds the route of a request path.
type routeTable struct {
	exact    map[string]*route
	patterns []*route // longest prefix first
	all      []*route // in configuration order
}

func newRouteTable(routes []Route, defaultMax int64, dflt Deflate) routeTable {
	t := routeTable{exact: make(map[string]*route)}
	for _, r := range routes {
		rt := newRoute(r, defaultMax, dflt)
		t.all = append(t.all, rt)
		if rt.pattern {
			t.patterns = append(t.patterns, rt)
		} else {
			t.exact[r.Path] = rt
		}
	}
	sort.SliceStable(t.patterns, func(i, j int) bool { return len(t.patterns[i].prefix) > len(t.patterns[j].prefix) })
	return t
}

// match returns the route of path and, for a pattern route, the segment that
// follows the prefix (nil when the path is the prefix alone or ends in "/").
// It allocates nothing.
func (t *routeTable) match(path []byte) (*route, []byte) {
	if rt := t.exact[string(path)]; rt != nil {
		return rt, nil
	}
	for _, rt := range t.patterns {
		n := len(rt.prefix)
		if len(path) < n || string(path[:n]) != rt.prefix {
			continue
		}
		rest := path[n:]
		if len(rest) == 0 {
			return rt, nil
		}
		if rest[0] != '/' || bytes.IndexByte(rest[1:], '/') >= 0 {
			continue
		}
		if len(rest) == 1 {
			return rt, nil
		}
		return rt, rest[1:]
	}
	return nil, nil
}

// queryParam returns the raw (still encoded) value of the first query
// parameter called name, or nil.
func queryParam(q []byte, name string) []byte {
	for len(q) > 0 {
		var pair []byte
		if i := bytes.IndexByte(q, '&'); i >= 0 {
			pair, q = q[:i], q[i+1:]
		} else {
			pair, q = q, nil
		}
		k, v, _ := bytes.Cut(pair, []byte{'='})
		if string(k) == name {
			return v
		}
	}
	return nil
}

// topicOf returns the topic of a pubsub handshake: the path segment of a
// pattern route, else the "topic" query parameter, decoded. The result is a
// view of the request (no allocation) unless it had to be decoded. ok is
// false when the topic is missing or invalid.
func topicOf(seg, query []byte) (topic []byte, ok bool) {
	var err error
	if seg != nil {
		topic = seg
		if bytes.IndexByte(seg, '%') >= 0 {
			var s string
			s, err = url.PathUnescape(string(seg))
			topic = []byte(s)
		}
	} else {
		v := queryParam(query, "topic")
		topic = v
		if bytes.IndexByte(v, '%') >= 0 || bytes.IndexByte(v, '+') >= 0 {
			var s string
			s, err = url.QueryUnescape(string(v))
			topic = []byte(s)
		}
	}
	if err != nil || !validTopic(topic) {
		return nil, false
	}
	return topic, true
}

// validTopic reports whether b may name a topic: 1 to 256 bytes of UTF-8
// without control characters.
func validTopic(b []byte) bool {
	if len(b) == 0 || len(b) > maxTopicLen {
		return false
	}
	for i := 0; i < len(b); i++ {
		if b[i] < 0x20 || b[i] == 0x7f {
			return false
		}
	}
	return utf8.Valid(b)
}
