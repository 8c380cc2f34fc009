//go:build !race && (darwin || dragonfly || freebsd || linux || netbsd || openbsd)

package loop

// Full sizes; race_test.go scales them down under the race detector.
const (
	raceEnabled = false

	loadConns      = 1000
	loadMessages   = 1000
	ab9MaxSingle   = 16 << 20
	ab9Fragmented  = 4 << 20
	ab9Chopped     = 1 << 20
	ab12Messages   = 2         // messages of each case of groups 12 and 13
	ab12Sets       = 5         // data sets of group 12 run
	ab13MaxPayload = 128 << 10 // largest message of group 13
)
