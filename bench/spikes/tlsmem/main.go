package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"os"
	"runtime"
)

func main() {
	n := flag.Int("n", 2000, "connections")
	prof := flag.String("prof", "", "heap profile prefix (sets MemProfileRate=1)")
	cas := flag.String("case", "all", "heap case name")
	flag.Parse()
	if *prof != "" {
		runtime.MemProfileRate = 1
	}
	args := flag.Args()
	mode := "heap"
	if len(args) > 0 {
		mode = args[0]
	}
	switch mode {
	case "heap":
		printSizes()
		x := []tls.CurveID{tls.X25519}
		cases := []heapCase{
			{name: "x25519/100B", curves: x, recSize: 100},
			{name: "default(mlkem)/100B", recSize: 100},
			{name: "default(mlkem)/100B/srvCurves=X25519", recSize: 100, srvX25519: true},
			{name: "x25519/100B/ConnectionState", curves: x, recSize: 100, callCS: true},
			{name: "x25519/100B/noTickets", curves: x, recSize: 100, noTickets: true},
			{name: "x25519/16KiB(dyn sizing)", curves: x, recSize: 16384},
			{name: "x25519/16KiB", curves: x, recSize: 16384, dynOff: true},
			{name: "default(mlkem)/16KiB", recSize: 16384, dynOff: true},
			{name: "x25519/1KiB", curves: x, recSize: 1024, dynOff: true},
			{name: "x25519/4KiB", curves: x, recSize: 4096, dynOff: true},
			{name: "x25519/64KiB-burst", curves: x, recSize: 65536, dynOff: true},
			{name: "x25519/64KiB-burst/recLimit", curves: x, recSize: 65536, dynOff: true, recLimit: true},
			{name: "handoff/x25519/100B", curves: x, recSize: 100, handoff: true},
			{name: "handoff/default(mlkem)/100B", recSize: 100, handoff: true},
			{name: "handoff/default/100B/noTickets", recSize: 100, handoff: true, noTickets: true},
			{name: "handoff/x25519/100B/keys-only", curves: x, recSize: 100, handoff: true, lazy: true},
			{name: "handoff/default(mlkem)/100B/keys-only", recSize: 100, handoff: true, lazy: true},
			{name: "handoff/pipelined", recSize: 100, handoff: true, pipelined: true},
			{name: "handoff/pipelined/noRecLimit", recSize: 100, handoff: true, pipelined: true, noRecLimit: true},
		}
		for _, c := range cases {
			if *cas != "all" && *cas != c.name {
				continue
			}
			p := ""
			if *prof != "" {
				p = *prof + "." + sanitize(c.name)
			}
			if c.noRecLimit {
				func() {
					defer func() {
						if r := recover(); r != nil {
							fmt.Printf("%-34s FAILS as expected: pipelined app record was consumed into tls.Conn.rawInput (%v)\n", c.name, r)
						}
					}()
					runHeapCase(c, 50, p)
				}()
				continue
			}
			runHeapCase(c, *n, p)
		}
	case "aead":
		aeadSizes()
	case "quic":
		quicProbe()
	case "tcpserver":
		tcpServer(*n)
	case "tcpclient":
		tcpClient(args[1], *n)
	default:
		fmt.Fprintln(os.Stderr, "unknown mode")
		os.Exit(2)
	}
}

func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c == '/' || c == '(' || c == ')' {
			b[i] = '_'
		}
	}
	return string(b)
}
