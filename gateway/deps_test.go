package gateway

import (
	"os/exec"
	"strings"
	"testing"
)

// natsServerModule is the NATS server's module path.
const natsServerModule = "github.com/nats-io/nats-server/"

// TestNoNATSServerLinked: the gateway links the NATS client only. The
// server is package natsembed's, linked by the programs that embed it
// (WithEmbeddedNATS); the check on natsembed shows that the one on the
// gateway would see the server.
func TestNoNATSServerLinked(t *testing.T) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to list the dependencies with: %v", err)
	}
	for i, c := range []struct {
		pkg  string
		want bool
	}{
		{"github.com/upgate/upgate/gateway", false},
		{"github.com/upgate/upgate/gateway/natsembed", true},
	} {
		out, err := exec.Command(goCmd, "list", "-deps", c.pkg).Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			t.Fatalf("#%d: go list -deps %s: %v\n%s", i, c.pkg, err, stderr)
		}
		var server []string
		for _, dep := range strings.Fields(string(out)) {
			if strings.HasPrefix(dep, natsServerModule) {
				server = append(server, dep)
			}
		}
		if got := len(server) > 0; got != c.want {
			t.Errorf("#%d: %s: got %d NATS server packages linked (%v); want them linked: %v", i, c.pkg, len(server), server[:min(len(server), 1)], c.want)
		}
	}
}
