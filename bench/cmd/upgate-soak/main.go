// Command upgate-soak runs upgate's load and fault tests against a running
// gateway (cmd/upgate), from one event-driven client process: one
// goroutine drives every connection through epoll, so that 19 000
// connections fit in one process. Each scenario prints its figures and a
// PASS or FAIL line, writes SCENARIO.md (and, for hold, a CSV and a PNG of
// the server's memory) under -out, and exits 1 on FAIL.
//
//	upgate-soak hold|slowloris|storm|fdlimit -addr HOST:PORT -admin HOST:PORT -server-pid PID [flags]
//
// scripts/soak.sh starts the server with each scenario's settings and runs
// them all.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/upgate/upgate/bench/internal/loadgen"
)

// common are the flags every scenario takes.
type common struct {
	addr      string
	dst       *unix.SockaddrInet4
	admin     string
	serverPID int
	out       string
	sources   int
	conc      int
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8080", "the gateway's public listener (IPv4 ip:port)")
	fs.StringVar(&c.admin, "admin", "127.0.0.1:9090", "the gateway's admin listener, for /metrics and /publish")
	fs.IntVar(&c.serverPID, "server-pid", 0, "the gateway's process id (memory, liveness, SIGTERM)")
	fs.StringVar(&c.out, "out", "", "directory for SCENARIO.md and the other result files")
	fs.IntVar(&c.sources, "sources", 64, "loopback source addresses (127.0.0.2 on), for ephemeral ports")
	fs.IntVar(&c.conc, "c", 256, "connections being set up at once at most")
}

func (c *common) check() error {
	dst, err := loadgen.Sockaddr4(c.addr)
	if err != nil {
		return err
	}
	c.dst = dst
	if c.serverPID <= 0 {
		return fmt.Errorf("-server-pid is required")
	}
	if c.sources < 1 || c.sources > 60000 {
		return fmt.Errorf("-sources must be in 1..60000")
	}
	if c.conc < 1 {
		return fmt.Errorf("-c must be positive")
	}
	if c.out != "" {
		return os.MkdirAll(c.out, 0o755)
	}
	return nil
}

// scenario is one mode of the client.
type scenario struct {
	usage string
	flags func(fs *flag.FlagSet, cm *common) func() (*report, error)
}

var scenarios = map[string]scenario{
	"hold":      {"connections held for a long time: echo, pub/sub, pings, memory, drain", holdFlags},
	"slowloris": {"stalled request heads and silent connections closed at the handshake timeout", slowFlags},
	"storm":     {"every connection dropped and reconnecting at once under a connect rate limit", stormFlags},
	"fdlimit":   {"more connections than the server's open-file limit allows", fdFlags},
}

func usage() {
	fmt.Fprintf(os.Stderr, "usage: upgate-soak SCENARIO [flags]   (upgate-soak SCENARIO -h for its flags)\n\nscenarios:\n")
	for _, name := range []string{"hold", "slowloris", "storm", "fdlimit"} {
		fmt.Fprintf(os.Stderr, "  %-10s %s\n", name, scenarios[name].usage)
	}
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == busyArg {
		busyLoop()
	}
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	sc, ok := scenarios[os.Args[1]]
	if !ok {
		usage()
		os.Exit(2)
	}
	name := os.Args[1]
	fs := flag.NewFlagSet("upgate-soak "+name, flag.ExitOnError)
	cm := &common{}
	cm.register(fs)
	run := sc.flags(fs, cm)
	_ = fs.Parse(os.Args[2:])
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "upgate-soak %s: unexpected argument %q\n", name, fs.Arg(0))
		os.Exit(2)
	}
	if err := cm.check(); err != nil {
		fmt.Fprintf(os.Stderr, "upgate-soak %s: %v\n", name, err)
		os.Exit(2)
	}
	// A signal stops the run; the busy-loop children die with the client.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sigs
		stopBusy()
		os.Exit(130)
	}()
	limit := 10 * time.Minute
	if name == "hold" {
		// the hold's own duration comes on top
		if d, err := time.ParseDuration(fs.Lookup("d").Value.String()); err == nil {
			limit += d
		}
	}
	watchdog(name, limit)
	r, err := run()
	stopBusy()
	if r == nil {
		r = newReport(name)
	}
	if err != nil {
		r.fail("%v", err)
	}
	r.finish(cm.out)
	if !r.ok() {
		os.Exit(1)
	}
}

// watchdog ends the process with status 3 if the run takes longer than
// limit: every phase is bounded, this is the bound of the bounds.
func watchdog(name string, limit time.Duration) {
	time.AfterFunc(limit, func() {
		fmt.Fprintf(os.Stderr, "upgate-soak %s: the run took longer than %s: stopped\n", name, limit)
		fmt.Printf("FAIL %s: the run took longer than %s\n", name, limit)
		stopBusy()
		os.Exit(3)
	})
}

// maxProcs reports the client's own parallelism in the summary.
func maxProcs() int { return runtime.GOMAXPROCS(0) }

// pollUntil polls e until done reports true or limit passes, calling step
// after every wait (at most 10 ms apart) and expiring deadlines every
// 100 ms; it reports whether done.
func pollUntil(e *engine, limit time.Duration, done func() bool, step func(now int64)) (bool, error) {
	until := e.now() + int64(limit)
	next := e.now()
	for {
		if done != nil && done() {
			return true, nil
		}
		now := e.now()
		if now >= until {
			return false, nil
		}
		if err := e.poll(int(min((until-now)/1e6+1, 10))); err != nil {
			return false, err
		}
		now = e.now()
		if now >= next {
			next = now + int64(100*time.Millisecond)
			e.expire()
		}
		if step != nil {
			step(now)
		}
	}
}
