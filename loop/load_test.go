//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// loadPayload is message k of connection i: 8 to 263 bytes, every byte
// derived from (i, k), so that a byte out of place or order is caught.
func loadPayload(dst []byte, i, k int) []byte {
	n := 8 + (i*7+k*13)%256
	dst = binary.BigEndian.AppendUint32(dst[:0], uint32(i))
	dst = binary.BigEndian.AppendUint32(dst, uint32(k))
	for j := 8; j < n; j++ {
		dst = append(dst, byte(i+k*3+j*11))
	}
	return dst
}

// TestConcurrentEcho runs loadConns connections at once, each echoing
// loadMessages messages (pipelined in bursts of 50 per write) and checking
// every byte and the order. Full size (1000 x 1000) without -race; scaled
// down under the race detector (race_test.go).
func TestConcurrentEcho(t *testing.T) {
	h := newTestHandler()
	s := startServer(t, h, testOptions())
	addr := s.Addr().String()
	start := time.Now()
	dials := make(chan struct{}, 64) // bounds concurrent handshakes
	errs := make(chan error, loadConns)
	var wg sync.WaitGroup
	for i := range loadConns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := loadClient(addr, i, dials); err != nil {
				errs <- fmt.Errorf("connection %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	elapsed := time.Since(start)
	snap := s.Stats()
	want := uint64(loadConns * loadMessages)
	if snap.MessagesIn != want || snap.MessagesOut != want {
		t.Fatalf("server counted %d in, %d out, want %d", snap.MessagesIn, snap.MessagesOut, want)
	}
	t.Logf("%d connections x %d messages echoed in %v (%.0f messages/s)", loadConns, loadMessages, elapsed,
		float64(2*want)/elapsed.Seconds())
}

func loadClient(addr string, i int, dials chan struct{}) error {
	dials <- struct{}{}
	c, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		<-dials
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	br := bufio.NewReaderSize(c, 32<<10)
	if _, err := c.Write(upgradeRequest("/ws")); err != nil {
		<-dials
		return err
	}
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			<-dials
			return err
		}
		if len(line) == 2 {
			break
		}
	}
	<-dials

	werr := make(chan error, 1)
	go func() {
		var buf, p []byte
		mask := [4]byte{byte(i), 0x5a, byte(i >> 8), 0xa5}
		for k := 0; k < loadMessages; {
			buf = buf[:0]
			for end := min(k+50, loadMessages); k < end; k++ {
				p = loadPayload(p, i, k)
				buf = append(buf, clientFrameMask(ws.OpBinary, true, 0, p, mask)...)
			}
			if _, err := c.Write(buf); err != nil {
				werr <- err
				return
			}
		}
		werr <- nil
	}()
	var want []byte
	for k := range loadMessages {
		f, err := readServerFrame(br)
		if err != nil {
			return fmt.Errorf("message %d: %w", k, err)
		}
		want = loadPayload(want, i, k)
		if f.Op != ws.OpBinary || !f.Fin || !bytes.Equal(f.Payload, want) {
			return fmt.Errorf("message %d: got %v", k, f)
		}
	}
	if err := <-werr; err != nil {
		return err
	}
	if _, err := c.Write(msg(ws.OpClose, closePayload(1000, ""))); err != nil {
		return err
	}
	f, err := readServerFrame(br)
	if err != nil || f.Op != ws.OpClose || f.CloseCode() != 1000 {
		return fmt.Errorf("close: %v %v", f, err)
	}
	return nil
}
