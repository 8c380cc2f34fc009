//go:build !(darwin || dragonfly || freebsd || linux || netbsd || openbsd)

package loop

// The package runs on gnet's epoll and kqueue pollers, which exist on Linux,
// macOS, FreeBSD, NetBSD, OpenBSD and DragonFly BSD only: every other file
// is built for those systems alone, and this one turns a build for any
// other GOOS (windows, plan9, js, wasip1, solaris, ...) into one error that
// says so, instead of a cascade of undefined names.
var _ = loop_builds_only_on_Linux_macOS_FreeBSD_NetBSD_OpenBSD_and_DragonFlyBSD
