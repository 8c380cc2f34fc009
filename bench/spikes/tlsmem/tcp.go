package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"flag"
	"fmt"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

var bufSize = flag.Int("buf", 512, "tcpserver: per-connection read buffer")
var x25519Only = flag.Bool("x25519", false, "tcpclient: CurvePreferences=[X25519]")

func vmRSS() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		panic(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "VmRSS:") {
			v, _ := strconv.ParseUint(strings.Fields(sc.Text())[1], 10, 64)
			return v * 1024
		}
	}
	return 0
}

type snap struct {
	conns                    int
	rss, heap, stacks, total uint64
}

func takeSnap(n int) snap {
	runtime.GC()
	runtime.GC()
	s := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/stacks:bytes"},
		{Name: "/memory/classes/total:bytes"},
	}
	metrics.Read(s)
	return snap{n, vmRSS(), s[0].Value.Uint64(), s[1].Value.Uint64(), s[2].Value.Uint64()}
}

func tcpServer(n int) {
	cert := selfSigned()
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	fmt.Println(ln.Addr().String())
	os.Stdout.Sync()
	var ready atomic.Int64
	step := n / 4
	snaps := []snap{takeSnap(0)}
	for i := 1; i <= n; i++ {
		c, err := ln.Accept()
		if err != nil {
			panic(err)
		}
		go func(c net.Conn) {
			tc := tls.Server(c, cfg)
			if err := tc.Handshake(); err != nil {
				panic(err)
			}
			buf := make([]byte, *bufSize)
			got := 0
			for got < 100 {
				m, err := tc.Read(buf)
				if err != nil {
					panic(err)
				}
				got += m
			}
			ready.Add(1)
			tc.Read(buf) // idle: parked in the netpoller until the client goes away
			tc.Close()
		}(c)
		if i%step == 0 {
			for ready.Load() < int64(i) {
				time.Sleep(5 * time.Millisecond)
			}
			time.Sleep(200 * time.Millisecond)
			snaps = append(snaps, takeSnap(i))
		}
	}
	last := snaps[len(snaps)-1]
	mid := snaps[1]
	d := float64(last.conns - mid.conns)
	fmt.Fprintf(os.Stderr, "buf=%d goroutines=%d\n", *bufSize, runtime.NumGoroutine())
	fmt.Fprintf(os.Stderr, "%6s %10s %10s %10s %10s\n", "conns", "VmRSS", "heapObj", "stacks", "rt total")
	for _, s := range snaps {
		fmt.Fprintf(os.Stderr, "%6d %10d %10d %10d %10d\n", s.conns, s.rss, s.heap, s.stacks, s.total)
	}
	fmt.Fprintf(os.Stderr, "slope %d->%d conns: RSS %.0f B/conn, heap %.0f, stacks %.0f, runtime total %.0f\n",
		mid.conns, last.conns,
		float64(last.rss-mid.rss)/d, float64(last.heap-mid.heap)/d,
		float64(last.stacks-mid.stacks)/d, float64(last.total-mid.total)/d)
	debug.FreeOSMemory()
	f := takeSnap(n)
	fmt.Fprintf(os.Stderr, "after FreeOSMemory: VmRSS %d (%.0f B/conn over baseline)\n", f.rss,
		float64(f.rss-snaps[0].rss)/float64(n))
}

func tcpClient(addr string, n int) {
	cfg := &tls.Config{InsecureSkipVerify: true, ServerName: "example.test", ClientSessionCache: nopCache{}}
	if *x25519Only {
		cfg.CurvePreferences = []tls.CurveID{tls.X25519}
	}
	msg := bytes.Repeat([]byte{'x'}, 100)
	conns := make([]*tls.Conn, 0, n)
	for range n {
		c, err := tls.Dial("tcp", addr, cfg)
		if err != nil {
			panic(err)
		}
		if _, err := c.Write(msg); err != nil {
			panic(err)
		}
		conns = append(conns, c)
	}
	fmt.Fprintf(os.Stderr, "client: %d connections up, curve=%v\n", len(conns), conns[0].ConnectionState().CurveID)
	time.Sleep(time.Hour)
}
