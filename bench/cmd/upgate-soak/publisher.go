package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// publisher posts numbered messages (1, 2, 3, ...) to the admin API from
// its own goroutine, so that a slow answer never stalls the event loop.
type publisher struct {
	url     string
	every   time.Duration
	expect  int // subscribers each publish should reach
	seq     atomic.Uint64
	errors  atomic.Int64
	short   atomic.Int64 // answers that delivered to fewer than expect
	slowest atomic.Int64 // ns
	lastErr atomic.Pointer[string]
	quit    chan struct{}
	done    chan struct{}
}

func startPublisher(url string, every time.Duration, expect int) *publisher {
	p := &publisher{url: url, every: every, expect: expect, quit: make(chan struct{}), done: make(chan struct{})}
	go p.run()
	return p
}

func (p *publisher) run() {
	defer close(p.done)
	cl := http.Client{Timeout: 5 * time.Second}
	t := time.NewTicker(p.every)
	defer t.Stop()
	for {
		select {
		case <-p.quit:
			return
		case <-t.C:
		}
		seq := p.seq.Load() + 1
		start := time.Now()
		err := p.post(&cl, seq)
		p.seq.Store(seq)
		if d := int64(time.Since(start)); d > p.slowest.Load() {
			p.slowest.Store(d)
		}
		if err != nil {
			p.errors.Add(1)
			msg := fmt.Sprintf("#%d at %s: %v", seq, start.Format("15:04:05.000"), err)
			p.lastErr.Store(&msg)
		}
	}
}

func (p *publisher) post(cl *http.Client, seq uint64) error {
	resp, err := cl.Post(p.url, "text/plain", strings.NewReader(strconv.FormatUint(seq, 10)))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	var answer struct {
		Delivered int `json:"delivered"`
	}
	if json.Unmarshal(body, &answer) == nil && answer.Delivered < p.expect {
		p.short.Add(1)
	}
	return nil
}

// stop ends the publisher and returns the last sequence number published.
func (p *publisher) stop() uint64 {
	select {
	case <-p.quit:
	default:
		close(p.quit)
	}
	<-p.done
	return p.seq.Load()
}
