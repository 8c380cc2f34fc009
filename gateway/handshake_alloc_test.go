//go:build !race && (darwin || dragonfly || freebsd || linux || netbsd || openbsd)

package gateway

import (
	"maps"
	"net"
	"slices"
	"testing"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"

	"github.com/upgate/upgate/internal/testutil"
	"github.com/upgate/upgate/internal/wstest"
)

// TestHandshakeAllocations counts, on a running gateway, what a whole
// connection cycle (accept, handshake with the permessage-deflate offer
// browsers send, close handshake, close) allocates in upgate's own code,
// each allocation named by the code that made it (gnet's are counted
// apart, see the loop's TestConnectionCost). The clients are raw
// syscalls. The loop's and the gateway's state of an ended connection
// serve the next one, and joining or leaving a topic's subscriber list on
// the connection's loop takes no allocation: nothing is allocated, on an
// echo route or a topic route.
func TestHandshakeAllocations(t *testing.T) {
	const cycles = 500
	cfg := testConfig()
	cfg.Loops = 1
	g := startGateway(t, cfg)
	ta := g.Addr().(*net.TCPAddr)
	sa := &unix.SockaddrInet4{Port: ta.Port}
	copy(sa.Addr[:], ta.IP.To4())
	buf := make([]byte, 4096)
	closeFrame := wstest.Message(ws.OpClose, wstest.ClosePayload(1000, ""))
	for i, tc := range []struct {
		path string
		max  float64 // allocations in upgate's code per cycle
	}{
		{"/echo", 0},
		{"/ws/topic", 0},
	} {
		req := wstest.UpgradeRequest(tc.path, "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits")
		keep := dialIdle(t, sa, req, buf) // a subscriber that stays, so the topic does not come and go
		cycle := func() {
			fd := dialIdle(t, sa, req, buf)
			_, _ = unix.Write(fd, closeFrame)
			for { // close reply, then EOF
				if n, err := unix.Read(fd, buf); n <= 0 || err != nil {
					break
				}
			}
			_ = unix.Close(fd)
		}
		settle := func() { eventually(t, "connections to close", func() bool { return g.Connections() == 1 }) }
		for range 100 { // every registry shard gets its table
			cycle()
		}
		settle()
		owners := testutil.AllocOwners(cycles, cycle, settle)
		var total int64
		for _, site := range slices.Sorted(maps.Keys(owners[testutil.OwnerUpgate])) {
			n := owners[testutil.OwnerUpgate][site]
			total += n
			t.Logf("%s: %.2f per cycle at %s", tc.path, float64(n)/cycles, site)
		}
		per := float64(total) / cycles
		t.Logf("%s: %.2f allocations per connection cycle in upgate's code", tc.path, per)
		// A stray allocation (a free list growing, the ticker's work) is
		// tolerated: 2 % of the cycles.
		if per > tc.max+0.02 {
			t.Errorf("#%d: %s: got %.2f allocations per connection cycle in upgate's code; want at most %v", i, tc.path, per, tc.max)
		}
		_ = unix.Close(keep)
		eventually(t, "the kept connection to close", func() bool { return g.Connections() == 0 })
	}
}
