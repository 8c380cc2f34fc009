package main

import "runtime"

// spareProc gives the Go runtime one P (GOMAXPROCS) more than its default
// when the event loops would take them all, unless GOMAXPROCS is in the
// environment: the operator's setting stands. loops is the number of
// event loops (0: one per CPU). It returns GOMAXPROCS and whether it
// changed it.
//
// Why: an event loop waits for input in epoll_wait(2), an ordinary
// blocking system call that keeps its P. When every P is held so and a
// loop pauses for a moment, the runtime takes the P away to look for other
// work and hands it back when the loop wakes: for a loop that pauses
// between messages, scheduler work and thread wake-ups on every pause.
// With one P to spare it leaves the loops alone, and the goroutines that
// are not loops (TLS handshakes, timers, the admin API, the fleet bus)
// run on it. Measured in bench/README.md ("One P to spare"): over wss://
// with one loop on one core, server CPU per echoed message fell by 8 %;
// a goroutine-per-connection server gains nothing from it.
func spareProc(loops int, getenv func(string) string) (int, bool) {
	cur := runtime.GOMAXPROCS(0)
	if getenv("GOMAXPROCS") != "" {
		return cur, false
	}
	if loops == 0 {
		loops = runtime.NumCPU() // gnet's one loop per CPU
	}
	if loops < cur {
		return cur, false
	}
	runtime.GOMAXPROCS(cur + 1)
	return cur + 1, true
}
