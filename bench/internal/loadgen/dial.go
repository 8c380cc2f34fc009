package loadgen

import "golang.org/x/sys/unix"

// Dialer opens non-blocking client sockets from loopback source addresses
// it takes in turn (see Sources) and watches them on a Poller. Like the
// Poller, it belongs to one goroutine.
type Dialer struct {
	p    *Poller
	srcs []unix.SockaddrInet4
	next int
}

// NewDialer returns a Dialer over sources source addresses whose sockets p
// watches.
func NewDialer(p *Poller, sources int) *Dialer {
	return &Dialer{p: p, srcs: Sources(sources)}
}

// Socket opens a non-blocking TCP socket with TCP_NODELAY, bound to the
// next source address with its port left to connect(2). On failure it
// returns the step that failed ("socket" or "bind") with the error; no
// socket is left open then.
func (d *Dialer) Socket() (fd int, op string, err error) {
	fd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, "socket", err
	}
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	src := &d.srcs[d.next]
	if d.next++; d.next == len(d.srcs) {
		d.next = 0
	}
	if err := unix.Bind(fd, src); err != nil {
		_ = unix.Close(fd)
		return -1, "bind", err
	}
	return fd, "", nil
}

// Connect starts connecting fd, from Socket, to dst and adds it to the
// Poller. On failure it closes fd and returns the step that failed
// ("connect" or "epoll") with the error.
func (d *Dialer) Connect(fd int, dst *unix.SockaddrInet4) (op string, err error) {
	if err := unix.Connect(fd, dst); err != nil && err != unix.EINPROGRESS {
		_ = unix.Close(fd)
		return "connect", err
	}
	if err := d.p.Add(fd); err != nil {
		_ = unix.Close(fd)
		return "epoll", err
	}
	return "", nil
}

// Flush writes pending output to the non-blocking socket fd and returns
// what it did not take, nil once all is written; a full socket (EAGAIN) is
// not an error.
func Flush(fd int, pending []byte) ([]byte, error) {
	n, err := unix.Write(fd, pending)
	if err == unix.EAGAIN {
		return pending, nil
	}
	if err != nil {
		return pending, err
	}
	if pending = pending[n:]; len(pending) == 0 {
		pending = nil
	}
	return pending, nil
}
