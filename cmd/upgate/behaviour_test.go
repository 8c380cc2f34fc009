package main

import (
	"strings"
	"testing"
)

// TestBehaviourNotOffered checks that the binary neither offers nor accepts
// the custom behaviour, which needs a Go Handler it cannot have.
func TestBehaviourNotOffered(t *testing.T) {
	file := writeFile(t, "upgate.yaml", "routes:\n  - path: /a\n    behaviour: custom\n")
	cases := []struct {
		args []string
		want string // the whole of standard error
	}{
		{[]string{"--route", "/x=custom"}, `upgate: configuration: --route (routes[0].behaviour): custom routes need a Go Handler and only work in a program that embeds the gateway package; the binary serves echo, pubsub and bridge`},
		{[]string{"--route", "/x=echo", "--route", "/y=shout"}, `upgate: configuration: --route (routes[1].behaviour): want echo, pubsub or bridge, got "shout"`},
		{[]string{"--config", file}, `upgate: configuration: ` + file + `:3: routes[0].behaviour: custom routes need a Go Handler and only work in a program that embeds the gateway package; the binary serves echo, pubsub and bridge`},
	}
	for i, c := range cases {
		_, stderr, code := runUpgate(t, nil, append([]string{"--listen", "127.0.0.1:0", "--admin", "off"}, c.args...)...)
		if code != exitConfig {
			t.Errorf("#%d: %q: got exit status %d; want %d\n%s", i, c.args, code, exitConfig, stderr)
		}
		if got := strings.TrimSpace(stderr); got != c.want {
			t.Errorf("#%d: %q: got\n%s\nwant\n%s", i, c.args, got, c.want)
		}
	}
	// Neither --help nor the route flag's own error offers it.
	out, _, _ := runUpgate(t, nil, "--help")
	_, stderr, _ := runUpgate(t, nil, "--route", "nonsense")
	for i, text := range []string{out, stderr} {
		if strings.Contains(text, "custom") {
			t.Errorf("#%d: offers custom:\n%s", i, text)
		}
	}
}
