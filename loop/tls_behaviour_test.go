//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import "testing"

// tlsBehaviourGroups are the conformance groups run over TLS; race marks
// those that also run under the race detector: every group but 9.1-9.8,
// which move tens of megabytes (TestAutobahn9Limits runs them over TCP
// under the race detector; the 1009 limits stay, in 9-message-too-big).
var tlsBehaviourGroups = []struct {
	name string
	run  func(t *testing.T, wr wire)
	race bool
}{
	{"1-framing", autobahn1Framing, true},
	{"2-ping-pong", autobahn2PingPong, true},
	{"3-reserved-bits", autobahn3ReservedBits, true},
	{"4-opcodes", autobahn4Opcodes, true},
	{"5-fragmentation", autobahn5Fragmentation, true},
	{"6-utf8", autobahn6UTF8, true},
	{"6-fail-fast", autobahn6FailFast, true},
	{"7-close", autobahn7Close, true},
	{"7-close-reported", closeReportedToHandler, true},
	{"9-limits", autobahn9Limits, false},
	{"9-message-too-big", messageTooBig, true},
	{"10-auto-fragmentation", autobahn10AutoFragmentation, true},
	{"12-compression", autobahn12Compression, true},
	{"13-parameters", autobahn13Parameters, true},
	{"13-offers", autobahn13Offers, true},
}

// TestTLSBehaviour runs the conformance groups of the autobahnN_test.go
// files over TLS: the same cases, with the server's TLS record layer
// between them and the frame codec.
func TestTLSBehaviour(t *testing.T) {
	for _, g := range tlsBehaviourGroups {
		t.Run(g.name, func(t *testing.T) {
			if raceEnabled && !g.race {
				t.Skip("runs over TLS without the race detector only")
			}
			g.run(t, overTLS)
		})
	}
}
