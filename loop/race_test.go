//go:build race && (darwin || dragonfly || freebsd || linux || netbsd || openbsd)

package loop

// Under the race detector (5-10x slower, 5-10x more memory) the heavy tests
// run scaled down; `go test ./loop/` without -race runs them at full size.
const (
	raceEnabled = true

	loadConns      = 1000      // TestConcurrentEcho connections
	loadMessages   = 200       // messages echoed per connection
	ab9MaxSingle   = 4 << 20   // largest single-frame message of 9.1/9.2
	ab9Fragmented  = 1 << 20   // fragmented message of 9.3/9.4
	ab9Chopped     = 256 << 10 // message of 9.5/9.6
	ab12Messages   = 1         // messages of each case of groups 12 and 13
	ab12Sets       = 2         // data sets of group 12 run
	ab13MaxPayload = 32 << 10  // largest message of group 13
)
