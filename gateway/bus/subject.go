package bus

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/upgate/upgate/internal/subject"
)

// Subject kinds under the prefix. The wire contract (see the package
// documentation) is written in terms of these.
const (
	kindIn    = "in"
	kindConn  = "conn"
	kindTopic = "topic"
	kindEvent = "event"
	kindAuth  = "auth"
)

// DefaultPrefix is the first token(s) of every subject the gateway uses.
const DefaultPrefix = "upgate"

// maxNodeLen bounds a node id: it is part of every connection id.
const maxNodeLen = 64

// Subjects builds the subjects of one gateway node. The zero value is not
// usable: make it with NewSubjects. Safe for concurrent use (read-only).
type Subjects struct {
	prefix string // "upgate"
	node   string // this node's id
	conn   string // "upgate.conn.<node>." (a connection id follows)
	topic  string // "upgate.topic."
}

// NewSubjects checks prefix (dot-separated tokens of letters, digits, '-' and
// '_') and node (one such token) and returns the subjects of that node.
func NewSubjects(prefix, node string) (*Subjects, error) {
	if err := ValidPrefix(prefix); err != nil {
		return nil, err
	}
	if err := ValidNode(node); err != nil {
		return nil, err
	}
	return &Subjects{
		prefix: prefix,
		node:   node,
		conn:   prefix + "." + kindConn + "." + node + ".",
		topic:  prefix + "." + kindTopic + ".",
	}, nil
}

// Prefix returns the subject prefix.
func (s *Subjects) Prefix() string { return s.prefix }

// Node returns this node's id.
func (s *Subjects) Node() string { return s.node }

// In returns the subject a bridge route publishes its clients' messages to:
// <prefix>.in.<route>, route being the route's subject token(s) (see
// RouteSubject).
func (s *Subjects) In(route string) string { return s.prefix + "." + kindIn + "." + route }

// Conn returns the subject that reaches the connection with this fleet id
// ("<node>.<n>"): <prefix>.conn.<node>.<n>.
func (s *Subjects) Conn(id string) string { return s.prefix + "." + kindConn + "." + id }

// LocalConn returns the subject of this node's connection n.
func (s *Subjects) LocalConn(n uint64) string { return s.conn + strconv.FormatUint(n, 10) }

// ConnWildcard is the subject this node subscribes to for its connections:
// <prefix>.conn.<node>.*.
func (s *Subjects) ConnWildcard() string { return s.conn + "*" }

// ConnOf returns the local connection number of a subject received on
// ConnWildcard, false when the subject is not one of this node's.
func (s *Subjects) ConnOf(subject string) (uint64, bool) {
	rest, ok := strings.CutPrefix(subject, s.conn)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(rest, 10, 64)
	return n, err == nil
}

// Topic returns the subject of a topic: <prefix>.topic.<escaped name> (see
// EscapeTopic).
func (s *Subjects) Topic(name string) string { return s.topic + EscapeTopic(name) }

// TopicOf returns the topic name of a subject received for a topic, false
// when the subject is not a topic subject or does not decode.
func (s *Subjects) TopicOf(subject string) (string, bool) {
	rest, ok := strings.CutPrefix(subject, s.topic)
	if !ok {
		return "", false
	}
	return UnescapeTopic(rest)
}

// Auth returns the subject of authorisation requests: <prefix>.auth.
func (s *Subjects) Auth() string { return s.prefix + "." + kindAuth }

// Event returns the subject of a lifecycle event: <prefix>.event.<name>,
// name being EventOpen or EventClose.
func (s *Subjects) Event(name string) string { return s.prefix + "." + kindEvent + "." + name }

// FleetID returns the fleet-wide id of this node's connection n: "<node>.<n>".
func (s *Subjects) FleetID(n uint64) string { return s.node + "." + strconv.FormatUint(n, 10) }

// ParseFleetID splits a fleet-wide connection id "<node>.<n>" into the node
// id and the node's connection number.
func ParseFleetID(id string) (node string, n uint64, err error) {
	node, num, ok := strings.Cut(id, ".")
	if !ok || ValidNode(node) != nil {
		return "", 0, fmt.Errorf("bus: connection id %q: want <node>.<number>", id)
	}
	n, err = strconv.ParseUint(num, 10, 64)
	if err != nil {
		return "", 0, fmt.Errorf("bus: connection id %q: want <node>.<number>", id)
	}
	return node, n, nil
}

// isTokenChar reports whether b may appear in a prefix token, a node id or a
// route subject token: letters, digits, '-' and '_'.
func isTokenChar(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-' || b == '_'
}

func validToken(t string) bool {
	if t == "" {
		return false
	}
	for i := 0; i < len(t); i++ {
		if !isTokenChar(t[i]) {
			return false
		}
	}
	return true
}

// ValidPrefix checks a subject prefix: one or more dot-separated tokens of
// letters, digits, '-' and '_'.
func ValidPrefix(p string) error {
	if p == "" {
		return errors.New("want one or more dot-separated tokens of letters, digits, '-' and '_', got an empty prefix")
	}
	for t := range strings.SplitSeq(p, ".") {
		if !validToken(t) {
			return fmt.Errorf("want dot-separated tokens of letters, digits, '-' and '_', got %q", p)
		}
	}
	return nil
}

// ValidNode checks a node id: 1 to 64 letters, digits, '-' and '_'.
func ValidNode(n string) error {
	if len(n) > maxNodeLen || !validToken(n) {
		return fmt.Errorf("want 1 to %d letters, digits, '-' and '_', got %q", maxNodeLen, n)
	}
	return nil
}

// ValidRouteSubject checks the subject tokens of a bridge route: one or more
// dot-separated tokens of letters, digits, '-' and '_'.
func ValidRouteSubject(s string) error { return ValidPrefix(s) }

// RouteSubject derives the subject token(s) of a route from its path: the
// leading '/' and a final "/{topic}" dropped, the other '/' turned into '.':
// "/chat" is "chat", "/api/chat/{topic}" is "api.chat". A path with other
// characters than letters, digits, '-' and '_' in its segments, or the path
// "/", has none: the route must name its subject.
func RouteSubject(path string) (string, error) {
	p := strings.TrimSuffix(path, "/{topic}")
	p = strings.TrimPrefix(p, "/")
	s := strings.ReplaceAll(p, "/", ".")
	if strings.Contains(p, ".") || ValidRouteSubject(s) != nil {
		return "", fmt.Errorf("path %q does not make a subject (segments of letters, digits, '-' and '_'); set the route's subject", path)
	}
	return s, nil
}

// EscapeTopic turns a topic name into subject tokens. Most names are used as
// they are, '.' included (topic "room.1" is subject tail "room.1"). Bytes a
// subject may not hold, or that NATS reads as wildcards, are written %XX (two
// upper-case hex digits): control characters, space, DEL, '%', '*' and '>',
// and a '.' that would make an empty token (first, last, or after another
// '.' kept as is). So topic "a b" is "a%20b", ".x" is "%2Ex" and "a...b" is
// "a.%2E.b". Bytes of 0x80 and above (UTF-8) pass unchanged. It is part
// of the wire contract (see the package documentation).
func EscapeTopic(name string) string { return subject.EscapeTopic(name) }

// UnescapeTopic reverses EscapeTopic. It accepts any subject tail: %XX is
// decoded wherever it appears, other bytes are taken as they are. It fails on
// a '%' not followed by two hex digits and on an empty result.
func UnescapeTopic(tail string) (string, bool) { return subject.UnescapeTopic(tail) }
