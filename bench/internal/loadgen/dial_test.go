package loadgen

import (
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestDialerConnectAndFlush(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dst, err := Sockaddr4(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPoller(16)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	d := NewDialer(p, 2)

	fd, op, err := d.Socket()
	if err != nil {
		t.Fatalf("Socket: %s: %v", op, err)
	}
	defer unix.Close(fd)
	if op, err := d.Connect(fd, dst); err != nil {
		t.Fatalf("Connect: %s: %v", op, err)
	}
	srv, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if got, want := srv.RemoteAddr().(*net.TCPAddr).IP.String(), "127.0.0.2"; got != want {
		t.Errorf("source address: got %s; want %s", got, want)
	}

	// Wait until connect(2) completed: the socket turns writable.
	deadline := time.Now().Add(5 * time.Second)
	for {
		evs, err := p.Wait(100)
		if err != nil {
			t.Fatal(err)
		}
		done := false
		for _, ev := range evs {
			done = done || (int(ev.Fd) == fd && ev.Events&unix.EPOLLOUT != 0)
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the socket did not become writable")
		}
	}
	rest, err := Flush(fd, []byte("hello"))
	if err != nil || rest != nil {
		t.Fatalf("Flush: got %q, %v; want nil, nil", rest, err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(srv, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("read: got %q, %v; want \"hello\"", buf, err)
	}

	if op, err := d.Connect(-1, dst); op != "connect" || err == nil {
		t.Errorf("Connect(-1): got %q, %v; want \"connect\" and an error", op, err)
	}
}
