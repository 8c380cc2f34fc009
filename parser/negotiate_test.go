package parser_test

import (
	"strings"
	"testing"

	"github.com/upgate/upgate/parser"
)

// Supported protocol sets.
var (
	onlyWS  = []parser.Protocol{parser.WebSocket()}
	irc     = parser.Protocol{Name: "IRC", Version: "6.9"}
	ircAny  = parser.Protocol{Name: "IRC"}
	rta     = parser.Protocol{Name: "RTA", Version: "x11"}
	shttp   = parser.Protocol{Name: "SHTTP", Version: "1.3"}
	h2c     = parser.Protocol{Name: "h2c"}
	http2   = parser.Protocol{Name: "HTTP", Version: "2.0"}
	httpAny = parser.Protocol{Name: "HTTP"}
)

// rfcUpgrade is the example of RFC 9110 §7.8.
const rfcUpgrade = "Upgrade: HTTP/2.0, SHTTP/1.3, IRC/6.9, RTA/x11"

func TestConnectionHas(t *testing.T) {
	tests := []struct {
		name   string
		fields []string
		option string
		want   bool
	}{
		{"single", []string{"Connection: upgrade"}, "upgrade", true},
		{"upper case", []string{"Connection: UPGRADE"}, "upgrade", true},
		{"list", []string{"Connection: keep-alive, Upgrade"}, "upgrade", true},
		{"list first", []string{"Connection: keep-alive, Upgrade"}, "keep-alive", true},
		{"two lines", []string{"Connection: keep-alive", "Connection: upgrade"}, "upgrade", true},
		{"two lines apart", []string{"Connection: keep-alive", "X: y", "connection: Upgrade"}, "upgrade", true},
		{"empty elements", []string{"Connection: Upgrade,,  ,close"}, "close", true},
		{"empty elements first", []string{"Connection: ,, Upgrade"}, "upgrade", true},
		{"OWS", []string{"Connection: \t upgrade \t,\tclose"}, "upgrade", true},
		{"empty line then option", []string{"Connection:", "Connection: upgrade"}, "upgrade", true},
		{"longer token", []string{"Connection: upgraded"}, "upgrade", false},
		{"prefixed token", []string{"Connection: x-upgrade"}, "upgrade", false},
		{"shorter token", []string{"Connection: upgrad"}, "upgrade", false},
		{"token with space", []string{"Connection: up grade"}, "upgrade", false},
		{"other field", []string{"X-Connection: upgrade"}, "upgrade", false},
		{"absent", nil, "upgrade", false},
	}
	for i, tt := range tests {
		r, _, err := parseStr(mkGet(tt.fields...), parser.Limits{})
		if err != nil {
			t.Errorf("#%d %s: %v", i, tt.name, err)
			continue
		}
		if got := r.ConnectionHas(tt.option); got != tt.want {
			t.Errorf("#%d %s: got %v; want %v", i, tt.name, got, tt.want)
		}
	}
}

func TestKeepAlive(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"HTTP/1.1 default", mkGet(), true},
		{"HTTP/1.1 close", mkGet("Connection: close"), false},
		{"HTTP/1.1 Close", mkGet("Connection: Close"), false},
		{"HTTP/1.1 close in a list", mkGet("Connection: keep-alive, close"), false},
		{"HTTP/1.1 close on a second line", mkGet("Connection: upgrade", "Connection: CLOSE"), false},
		{"HTTP/1.1 closed is not close", mkGet("Connection: closed"), true},
		{"HTTP/1.1 keep-alive", mkGet("Connection: keep-alive"), true},
		{"HTTP/1.0 default", mkReq("GET / HTTP/1.0"), false},
		{"HTTP/1.0 keep-alive", mkReq("GET / HTTP/1.0", "Connection: keep-alive"), true},
		{"HTTP/1.0 Keep-Alive", mkReq("GET / HTTP/1.0", "Connection: Keep-Alive"), true},
		{"HTTP/1.0 keep-alive on a second line", mkReq("GET / HTTP/1.0", "Connection: foo", "Connection: bar, keep-alive"), true},
		{"HTTP/1.0 keep-alives", mkReq("GET / HTTP/1.0", "Connection: keep-alives"), false},
		{"HTTP/1.0 close", mkReq("GET / HTTP/1.0", "Connection: close"), false},
	}
	for i, tt := range tests {
		r, _, err := parseStr(tt.in, parser.Limits{})
		if err != nil {
			t.Errorf("#%d %s: %v", i, tt.name, err)
			continue
		}
		if got := r.KeepAlive(); got != tt.want {
			t.Errorf("#%d %s: got %v; want %v", i, tt.name, got, tt.want)
		}
	}
}

func TestListIter(t *testing.T) {
	tests := []struct {
		name   string
		fields []string
		id     parser.FieldID
		want   []string
	}{
		{"one line", []string{"Upgrade: a, b"}, parser.FieldUpgrade, []string{"a", "b"}},
		{"several lines", []string{"Upgrade: a", "X: y", "Upgrade: b,c", "upgrade: d"}, parser.FieldUpgrade, []string{"a", "b", "c", "d"}},
		{"empty elements and OWS", []string{"Connection: ,a,, \t,b\t,", "Connection:", "Connection: ,"}, parser.FieldConnection, []string{"a", "b"}},
		{"inner whitespace kept", []string{"Upgrade: a b ,c"}, parser.FieldUpgrade, []string{"a b", "c"}},
		{"absent", []string{"X: a"}, parser.FieldUpgrade, nil},
	}
	for i, tt := range tests {
		r, _, err := parseStr(mkGet(tt.fields...), parser.Limits{})
		if err != nil {
			t.Errorf("#%d %s: %v", i, tt.name, err)
			continue
		}
		var got []string
		it := r.List(tt.id)
		for it.Next() {
			got = append(got, string(it.Elem()))
		}
		if it.Next() {
			t.Errorf("#%d %s: Next true after the end", i, tt.name)
		}
		if strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("#%d %s: got %q; want %q", i, tt.name, got, tt.want)
		}
	}
}

func TestSelectUpgrade(t *testing.T) {
	up := "Connection: Upgrade"
	tests := []struct {
		name      string
		in        string
		supported []parser.Protocol
		index     int
		version   string // "<nil>" when the client named none
	}{
		// The connection option.
		{"websocket", mkGet(up, "Upgrade: websocket"), onlyWS, 0, "<nil>"},
		{"keep-alive, Upgrade", mkGet("Connection: keep-alive, Upgrade", "Upgrade: websocket"), onlyWS, 0, "<nil>"},
		{"Connection over two lines", mkGet("Connection: keep-alive", "Upgrade: websocket", "Connection: upgrade"), onlyWS, 0, "<nil>"},
		{"Connection with empty elements", mkGet("Connection: Upgrade,,  ,close", "Upgrade: websocket"), onlyWS, 0, "<nil>"},
		{"Connection in upper case", mkGet("CONNECTION: UPGRADE", "UPGRADE: websocket"), onlyWS, 0, "<nil>"},
		{"no Connection", mkGet("Upgrade: websocket"), onlyWS, -1, "<nil>"},
		{"Connection without upgrade", mkGet("Connection: keep-alive", "Upgrade: websocket"), onlyWS, -1, "<nil>"},
		{"Connection: upgraded", mkGet("Connection: upgraded", "Upgrade: websocket"), onlyWS, -1, "<nil>"},
		{"Connection: x-upgrade", mkGet("Connection: x-upgrade", "Upgrade: websocket"), onlyWS, -1, "<nil>"},
		{"Upgrade named in another field", mkGet("X-Connection: upgrade", "Upgrade: websocket"), onlyWS, -1, "<nil>"},
		{"no Upgrade", mkGet(up), onlyWS, -1, "<nil>"},
		{"empty Upgrade", mkGet(up, "Upgrade:"), onlyWS, -1, "<nil>"},
		{"HTTP/1.0", mkReq("GET / HTTP/1.0", "Host: h", up, "Upgrade: websocket"), onlyWS, -1, "<nil>"},

		// Preference order.
		{"RFC example, IRC", mkGet(up, rfcUpgrade), []parser.Protocol{ircAny}, 0, "6.9"},
		{"RFC example, IRC/6.9", mkGet(up, rfcUpgrade), []parser.Protocol{irc}, 0, "6.9"},
		{"RFC example, server order ignored", mkGet(up, rfcUpgrade), []parser.Protocol{rta, irc}, 1, "6.9"},
		{"RFC example, SHTTP first", mkGet(up, rfcUpgrade), []parser.Protocol{rta, irc, shttp}, 2, "1.3"},
		{"RFC example, RTA", mkGet(up, rfcUpgrade), []parser.Protocol{rta, parser.WebSocket()}, 0, "x11"},
		{"RFC example, HTTP/2.0 skipped", mkGet(up, rfcUpgrade), []parser.Protocol{http2, rta}, 1, "x11"},
		{"RFC example, nothing", mkGet(up, rfcUpgrade), onlyWS, -1, "<nil>"},
		{"RFC example, wrong IRC version", mkGet(up, rfcUpgrade), []parser.Protocol{{Name: "IRC", Version: "7"}}, -1, "<nil>"},
		{"RFC example over two lines", mkGet(up, "Upgrade: HTTP/2.0, SHTTP/1.3", "Upgrade: IRC/6.9, RTA/x11"), []parser.Protocol{rta, irc}, 1, "6.9"},
		{"foo/2, websocket", mkGet(up, "Upgrade: foo/2, websocket"), onlyWS, 0, "<nil>"},
		{"OWS and empty elements", mkGet(up, "Upgrade: ,\tfoo/2 , ,  websocket \t"), onlyWS, 0, "<nil>"},
		{"several lines", mkGet(up, "Upgrade: foo", "X: y", "Upgrade: bar, websocket"), onlyWS, 0, "<nil>"},

		// Versions.
		{"IRC/7 against IRC/6.9", mkGet(up, "Upgrade: IRC/7"), []parser.Protocol{irc}, -1, "<nil>"},
		{"IRC/7 against any IRC", mkGet(up, "Upgrade: IRC/7"), []parser.Protocol{irc, ircAny}, 1, "7"},
		{"IRC without version against IRC/6.9", mkGet(up, "Upgrade: IRC"), []parser.Protocol{irc}, 0, "<nil>"},
		{"foo without version against foo/1 and foo/2", mkGet(up, "Upgrade: foo"), []parser.Protocol{{Name: "foo", Version: "2"}, {Name: "foo", Version: "1"}}, 0, "<nil>"},
		{"seed example", mkGet(up, "Upgrade: example/1, foo/2"), []parser.Protocol{{Name: "foo", Version: "2"}}, 0, "2"},
		{"seed example, neither", mkGet(up, "Upgrade: example/1, foo/2"), []parser.Protocol{{Name: "foo", Version: "3"}, {Name: "example", Version: "2"}}, -1, "<nil>"},
		{"IRC without version against any IRC", mkGet(up, "Upgrade: IRC"), []parser.Protocol{ircAny}, 0, "<nil>"},
		{"IRC/7 then IRC/6.9", mkGet(up, "Upgrade: IRC/7, IRC/6.9"), []parser.Protocol{irc}, 0, "6.9"},
		{"websocket/13", mkGet(up, "Upgrade: websocket/13"), onlyWS, 0, "13"},

		// Case.
		{"WebSocket", mkGet(up, "Upgrade: WebSocket"), onlyWS, 0, "<nil>"},
		{"WEBSOCKET", mkGet(up, "Upgrade: WEBSOCKET"), onlyWS, 0, "<nil>"},
		{"irc/6.9", mkGet(up, "Upgrade: irc/6.9"), []parser.Protocol{irc}, 0, "6.9"},
		{"rta/X11 against RTA/x11", mkGet(up, "Upgrade: rta/X11"), []parser.Protocol{rta}, -1, "<nil>"},

		// Malformed elements are skipped.
		{"/1 skipped", mkGet(up, "Upgrade: /1, websocket"), onlyWS, 0, "<nil>"},
		{"a/ skipped", mkGet(up, "Upgrade: websocket/, websocket"), onlyWS, 0, "<nil>"},
		{"a b skipped", mkGet(up, "Upgrade: websocket x, websocket"), onlyWS, 0, "<nil>"},
		{"a/b/c skipped", mkGet(up, "Upgrade: websocket/1/2, websocket"), onlyWS, 0, "<nil>"},
		{"a/ never chosen", mkGet(up, "Upgrade: a/"), []parser.Protocol{{Name: "a"}}, -1, "<nil>"},
		{"a b never chosen", mkGet(up, "Upgrade: a b"), []parser.Protocol{{Name: "a"}, {Name: "a b"}}, -1, "<nil>"},
		{"a/b/c never chosen", mkGet(up, "Upgrade: a/b/c"), []parser.Protocol{{Name: "a"}, {Name: "a", Version: "b/c"}}, -1, "<nil>"},
		{"/1 never chosen", mkGet(up, "Upgrade: /1"), []parser.Protocol{{Name: ""}}, -1, "<nil>"},

		// HTTP/2 is never an upgrade.
		{"h2c", mkGet("Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c", "HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA"), []parser.Protocol{h2c}, -1, "<nil>"},
		{"H2C", mkGet(up, "Upgrade: H2C"), []parser.Protocol{h2c}, -1, "<nil>"},
		{"HTTP/2.0", mkGet(up, "Upgrade: HTTP/2.0"), []parser.Protocol{http2}, -1, "<nil>"},
		{"HTTP/2.0 against any HTTP", mkGet(up, "Upgrade: HTTP/2.0"), []parser.Protocol{httpAny}, -1, "<nil>"},
		{"HTTP/2", mkGet(up, "Upgrade: http/2"), []parser.Protocol{httpAny}, -1, "<nil>"},
		{"h2c, websocket", mkGet(up, "Upgrade: h2c, websocket"), []parser.Protocol{h2c, parser.WebSocket()}, 1, "<nil>"},
		{"HTTP/1.1 is not HTTP/2", mkGet(up, "Upgrade: HTTP/1.1"), []parser.Protocol{httpAny}, 0, "1.1"},

		{"nothing supported", mkGet(up, "Upgrade: websocket"), nil, -1, "<nil>"},
	}
	for i, tt := range tests {
		r, _, err := parseStr(tt.in, parser.Limits{})
		if err != nil {
			t.Errorf("#%d %s: %v", i, tt.name, err)
			continue
		}
		index, version := r.SelectUpgrade(tt.supported)
		if index != tt.index || show(version) != tt.version {
			t.Errorf("#%d %s: got (%d, %q); want (%d, %q)", i, tt.name, index, show(version), tt.index, tt.version)
		}
	}
}

func TestWantsUpgrade(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"websocket", mkGet("Connection: Upgrade", "Upgrade: websocket"), true},
		{"unknown protocol", mkGet("Connection: Upgrade", "Upgrade: foo/1"), true},
		{"h2c", mkGet("Connection: Upgrade", "Upgrade: h2c"), true},
		{"no Connection option", mkGet("Connection: keep-alive", "Upgrade: websocket"), false},
		{"Connection: upgraded", mkGet("Connection: upgraded", "Upgrade: websocket"), false},
		{"no Upgrade", mkGet("Connection: Upgrade"), false},
		{"plain GET", mkGet(), false},
		{"HTTP/1.0", mkReq("GET / HTTP/1.0", "Connection: Upgrade", "Upgrade: websocket"), false},
	}
	for i, tt := range tests {
		r, _, err := parseStr(tt.in, parser.Limits{})
		if err != nil {
			t.Errorf("#%d %s: %v", i, tt.name, err)
			continue
		}
		if got := r.WantsUpgrade(); got != tt.want {
			t.Errorf("#%d %s: got %v; want %v", i, tt.name, got, tt.want)
		}
	}
}
