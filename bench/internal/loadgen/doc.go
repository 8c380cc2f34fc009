// Package loadgen holds what upgate's event-driven load generators share:
// an edge-triggered epoll poller, a dialer from loopback source addresses,
// prepared upgrade requests with their expected accept values, the client
// side of RFC 6455 framing, and readers of a process's figures in /proc.
// One goroutine drives a Poller and every connection on it; nothing here
// starts a goroutine.
package loadgen
