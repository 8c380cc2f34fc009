//go:build !race && (darwin || dragonfly || freebsd || linux || netbsd || openbsd)

package loop

// Full sizes; race_test.go scales them down under the race detector.
const (
	raceEnabled = false

	loadConns     = 1000
	loadMessages  = 1000
	ab9MaxSingle  = 16 << 20
	ab9Fragmented = 4 << 20
	ab9Chopped    = 1 << 20
)
