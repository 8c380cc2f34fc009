//go:build linux

package tunnel

import (
	"fmt"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// spliceFlags: never block, move pages rather than copy where possible.
const spliceFlags = unix.SPLICE_F_NONBLOCK | unix.SPLICE_F_MOVE

// pumpRounds bounds the read-write rounds of one direction per event, so
// that a fast tunnel does not starve the others of its loop. Level-triggered
// epoll reports what is left.
const pumpRounds = 16

// pipe is a kernel pipe used to splice one direction of a Raw tunnel.
type pipe struct {
	r, w int
	size int // capacity in bytes
}

// close closes both ends of p.
func (p pipe) close() {
	unix.Close(p.r)
	unix.Close(p.w)
}

// getPipe returns an empty pipe from the loop's pool or a new one of
// Options.PipeSize.
func (l *loop) getPipe() (pipe, error) {
	if n := len(l.pipes); n > 0 {
		p := l.pipes[n-1]
		l.pipes = l.pipes[:n-1]
		return p, nil
	}
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		return pipe{}, fmt.Errorf("tunnel: pipe2: %w", err)
	}
	p := pipe{r: fds[0], w: fds[1]}
	size, err := unix.FcntlInt(uintptr(p.w), unix.F_SETPIPE_SZ, l.r.opts.PipeSize)
	if err != nil {
		// Above /proc/sys/fs/pipe-max-size or the user's pipe quota: keep
		// the pipe's default capacity.
		size, err = unix.FcntlInt(uintptr(p.w), unix.F_GETPIPE_SZ, 0)
	}
	if err != nil {
		p.close()
		return pipe{}, fmt.Errorf("tunnel: fcntl F_GETPIPE_SZ: %w", err)
	}
	p.size = size
	return p, nil
}

// putPipe returns an empty pipe to the pool, or closes it if the pool is
// full.
func (l *loop) putPipe(p pipe) {
	if len(l.pipes) >= l.maxPipes {
		p.close()
		return
	}
	l.pipes = append(l.pipes, p)
}

// rawDir is one direction of a Raw tunnel: src spliced to dst through a
// pipe held only while bytes are in flight.
type rawDir struct {
	src, dst int
	pre      []byte // bytes for dst before any splice from src
	p        pipe
	hasPipe  bool
	inPipe   int // bytes in p
	eof      bool
	shut     bool // dst was shut down for writing
	n        *atomic.Int64
}

// release gives back d's pipe: to the pool if empty, closed otherwise.
func (d *rawDir) release(l *loop) {
	if !d.hasPipe {
		return
	}
	d.hasPipe = false
	if d.inPipe == 0 {
		l.putPipe(d.p)
	} else {
		d.p.close()
		d.inPipe = 0
	}
}

// pumpRaw moves bytes from d.src to d.dst until one would block, src ends
// or pumpRounds rounds are done. Its error ends the tunnel.
func (t *Tunnel) pumpRaw(d *rawDir) error {
	l := t.loop
	for range pumpRounds {
		if len(d.pre) > 0 {
			n, err := unix.Write(d.dst, d.pre)
			if err == unix.EAGAIN || err == unix.EINTR {
				return nil
			}
			if err != nil {
				return fmt.Errorf("tunnel: write: %w", err)
			}
			d.pre = d.pre[n:]
			d.n.Add(int64(n))
			t.active = l.now
			continue
		}
		if d.inPipe > 0 {
			n, err := unix.Splice(d.p.r, nil, d.dst, nil, d.inPipe, spliceFlags)
			if err == unix.EAGAIN || err == unix.EINTR {
				return nil
			}
			if err != nil {
				return fmt.Errorf("tunnel: splice: %w", err)
			}
			d.inPipe -= int(n)
			d.n.Add(int64(n))
			t.active = l.now
			if d.inPipe > 0 {
				continue
			}
		}
		if d.eof {
			break
		}
		if !d.hasPipe {
			p, err := l.getPipe()
			if err != nil {
				return err
			}
			d.p, d.hasPipe = p, true
		}
		n, err := unix.Splice(d.src, nil, d.p.w, nil, d.p.size, spliceFlags)
		if err == unix.EAGAIN || err == unix.EINTR {
			break
		}
		if err != nil {
			return fmt.Errorf("tunnel: splice: %w", err)
		}
		if n == 0 {
			d.eof = true
			break
		}
		d.inPipe += int(n)
		t.active = l.now
	}
	if d.inPipe == 0 {
		d.release(l)
	}
	return nil
}

// want returns the events d needs watched on its src and its dst: reading
// src only while nothing waits for dst, which is the backpressure.
func (d *rawDir) want() (src, dst uint32) {
	if d.inPipe > 0 || len(d.pre) > 0 {
		return 0, unix.EPOLLOUT
	}
	if !d.eof {
		return unix.EPOLLIN, 0
	}
	return 0, 0
}

// settleRaw shuts down what has ended, ends the tunnel when both directions
// are done and otherwise updates what epoll watches.
func (t *Tunnel) settleRaw() {
	for i := range t.raw {
		d := &t.raw[i]
		if d.eof && d.inPipe == 0 && len(d.pre) == 0 && !d.shut {
			d.shut = true
			t.startDrain()
			if err := unix.Shutdown(d.dst, unix.SHUT_WR); err != nil && err != unix.ENOTCONN {
				t.end(fmt.Errorf("tunnel: shutdown: %w", err))
				return
			}
		}
	}
	if t.raw[0].shut && t.raw[1].shut {
		t.end(nil)
		return
	}
	abSrc, abDst := t.raw[0].want()
	baSrc, baDst := t.raw[1].want()
	if !t.watch(abSrc|baDst, abDst|baSrc) {
		return
	}
	t.account(int64(t.raw[0].inPipe + len(t.raw[0].pre) + t.raw[1].inPipe))
}
