package bus

import (
	"strings"
	"testing"
)

func TestSubjects(t *testing.T) {
	s, err := NewSubjects("acme.ws", "n1")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ got, want string }{
		{s.In("chat"), "acme.ws.in.chat"},
		{s.Conn("n2.7"), "acme.ws.conn.n2.7"},
		{s.LocalConn(42), "acme.ws.conn.n1.42"},
		{s.ConnWildcard(), "acme.ws.conn.n1.*"},
		{s.Topic("news"), "acme.ws.topic.news"},
		{s.Topic("room 1"), "acme.ws.topic.room%201"},
		{s.Auth(), "acme.ws.auth"},
		{s.Event(EventOpen), "acme.ws.event.open"},
		{s.Event(EventClose), "acme.ws.event.close"},
		{s.FleetID(42), "n1.42"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
	if n, ok := s.ConnOf("acme.ws.conn.n1.42"); !ok || n != 42 {
		t.Errorf("ConnOf = %d, %v", n, ok)
	}
	for _, bad := range []string{"acme.ws.conn.n2.42", "acme.ws.conn.n1.x", "acme.ws.conn.n1.", "other"} {
		if _, ok := s.ConnOf(bad); ok {
			t.Errorf("ConnOf(%q) ok", bad)
		}
	}
	if name, ok := s.TopicOf("acme.ws.topic.room%201"); !ok || name != "room 1" {
		t.Errorf("TopicOf = %q, %v", name, ok)
	}
	if _, ok := s.TopicOf("acme.ws.in.x"); ok {
		t.Error("TopicOf of an in subject")
	}
}

func TestValidNames(t *testing.T) {
	for _, p := range []string{"upgate", "a.b", "A-1_x.y"} {
		if err := ValidPrefix(p); err != nil {
			t.Errorf("ValidPrefix(%q): %v", p, err)
		}
	}
	for _, p := range []string{"", ".", "a.", ".a", "a..b", "a b", "a*", "a.>", "ü"} {
		if ValidPrefix(p) == nil {
			t.Errorf("ValidPrefix(%q) accepted", p)
		}
	}
	for _, n := range []string{"a", "node-1", strings.Repeat("x", 64)} {
		if err := ValidNode(n); err != nil {
			t.Errorf("ValidNode(%q): %v", n, err)
		}
	}
	for _, n := range []string{"", "a.b", "a b", strings.Repeat("x", 65)} {
		if ValidNode(n) == nil {
			t.Errorf("ValidNode(%q) accepted", n)
		}
	}
	if n := RandomNode(); ValidNode(n) != nil || len(n) != 8 || n == RandomNode() {
		t.Errorf("RandomNode = %q", n)
	}
}

func TestFleetID(t *testing.T) {
	node, n, err := ParseFleetID("abc.42")
	if err != nil || node != "abc" || n != 42 {
		t.Fatalf("ParseFleetID = %q %d %v", node, n, err)
	}
	for _, bad := range []string{"", "abc", "abc.", ".42", "abc.-1", "a.b.1", "abc.x"} {
		if _, _, err := ParseFleetID(bad); err == nil {
			t.Errorf("ParseFleetID(%q) accepted", bad)
		}
	}
}

func TestRouteSubject(t *testing.T) {
	for path, want := range map[string]string{
		"/chat":              "chat",
		"/api/chat":          "api.chat",
		"/chat/{topic}":      "chat",
		"/v1/rooms/{topic}":  "v1.rooms",
		"/a-b_c":             "a-b_c",
		"/x/y/z":             "x.y.z",
		"/ws-bridge/{topic}": "ws-bridge",
	} {
		got, err := RouteSubject(path)
		if err != nil || got != want {
			t.Errorf("RouteSubject(%q) = %q, %v; want %q", path, got, err, want)
		}
	}
	for _, path := range []string{"/", "/{topic}", "/v1.0/chat", "/a//b", "/chat/", "/ü"} {
		if got, err := RouteSubject(path); err == nil {
			t.Errorf("RouteSubject(%q) = %q, want an error", path, got)
		}
	}
}
