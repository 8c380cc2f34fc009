package loadgen

import (
	"errors"
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"
)

// Poller is a thin epoll wrapper: one instance per process, driven by one
// goroutine, edge-triggered.
type Poller struct {
	epfd   int
	events []unix.EpollEvent
	ev     unix.EpollEvent // scratch for EpollCtl, reused to avoid an allocation
	tfd    int             // timerfd for waits shorter than epoll's millisecond
	its    unix.ItimerSpec
	tbuf   [8]byte
}

// NewPoller creates an epoll instance returning up to size events a wait.
func NewPoller(size int) (*Poller, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	p := &Poller{epfd: fd, events: make([]unix.EpollEvent, size), tfd: -1}
	tfd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("timerfd_create: %w", err)
	}
	p.ev = unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(tfd)}
	if err := unix.EpollCtl(fd, unix.EPOLL_CTL_ADD, tfd, &p.ev); err != nil {
		return nil, fmt.Errorf("epoll_ctl timerfd: %w", err)
	}
	p.tfd = tfd
	return p, nil
}

// Wake arms the timer to end the next wait after ns nanoseconds.
func (p *Poller) Wake(ns int64) {
	p.its.Value = unix.NsecToTimespec(max(ns, 1))
	_ = unix.TimerfdSettime(p.tfd, 0, &p.its, nil)
}

// Timer consumes the timer's expiry; it reports whether fd is the timer.
func (p *Poller) Timer(fd int32) bool {
	if int(fd) != p.tfd {
		return false
	}
	_, _ = unix.Read(p.tfd, p.tbuf[:])
	return true
}

// Add watches fd for input, output and hang-up, edge-triggered.
func (p *Poller) Add(fd int) error {
	p.ev = unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(fd)}
	return unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &p.ev)
}

// Wait returns the ready events, waiting at most msec milliseconds.
func (p *Poller) Wait(msec int) ([]unix.EpollEvent, error) {
	for {
		n, err := unix.EpollWait(p.epfd, p.events, msec)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		return p.events[:n], nil
	}
}

// Close releases the epoll instance and its timer.
func (p *Poller) Close() {
	_ = unix.Close(p.tfd)
	_ = unix.Close(p.epfd)
}

// Sockaddr4 converts "ip:port" to a connect address.
func Sockaddr4(addr string) (*unix.SockaddrInet4, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, fmt.Errorf("address %q: %w", addr, err)
	}
	if !ap.Addr().Is4() {
		return nil, fmt.Errorf("address %q: IPv4 only", addr)
	}
	return &unix.SockaddrInet4{Addr: ap.Addr().As4(), Port: int(ap.Port())}, nil
}

// Sources returns n loopback source addresses 127.0.0.2, 127.0.0.3, ...
// (then 127.0.1.x and on): each has its own ephemeral port space, so that a
// long run never runs out of ports. All of 127.0.0.0/8 is loopback on Linux.
func Sources(n int) []unix.SockaddrInet4 {
	out := make([]unix.SockaddrInet4, n)
	for i := range out {
		v := i + 2
		out[i].Addr = [4]byte{127, byte(v >> 16), byte(v >> 8), byte(v)}
		if out[i].Addr[3] == 0 || out[i].Addr[3] == 255 {
			out[i].Addr[3] = 1
		}
	}
	return out
}

// ErrKind names a socket error for the error counters; refused reports
// ECONNREFUSED, which is counted apart from other failures.
func ErrKind(prefix string, err error) (kind string, refused bool) {
	var en unix.Errno
	if errors.As(err, &en) {
		if en == unix.ECONNREFUSED {
			return "refused", true
		}
		switch en {
		case unix.ECONNRESET:
			return prefix + ": reset", false
		case unix.ETIMEDOUT:
			return prefix + ": timed out", false
		case unix.EPIPE:
			return prefix + ": broken pipe", false
		}
		return prefix + ": " + unix.ErrnoName(en), false
	}
	return prefix + ": " + err.Error(), false
}
