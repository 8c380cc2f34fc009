package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// busyArg runs the client as a busy loop: the CPU contention of hold
// -contention.
const busyArg = "busy-loop"

// busyLoop spins on one thread until killed.
func busyLoop() {
	runtime.GOMAXPROCS(1)
	n := uint64(0)
	for {
		n++
	}
}

var busy struct {
	sync.Mutex
	cmds []*exec.Cmd
}

// startBusy starts n busy-loop processes on the CPUs the server may run on,
// so that they compete with it; they die with the client (Pdeathsig) and
// with stopBusy. It returns the CPUs they run on.
func startBusy(n, serverPID int) (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(serverPID, &set); err != nil {
		return "", fmt.Errorf("server CPUs: %w", err)
	}
	busy.Lock()
	defer busy.Unlock()
	for range n {
		cmd := exec.Command(self, busyArg)
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			return "", err
		}
		busy.cmds = append(busy.cmds, cmd)
		if err := unix.SchedSetaffinity(cmd.Process.Pid, &set); err != nil {
			return "", fmt.Errorf("busy loop CPUs: %w", err)
		}
	}
	return cpuList(&set), nil
}

// stopBusy kills the busy-loop processes.
func stopBusy() {
	busy.Lock()
	defer busy.Unlock()
	for _, cmd := range busy.cmds {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	busy.cmds = nil
}

// cpuList renders a CPU set as "0,1".
func cpuList(set *unix.CPUSet) string {
	s := ""
	for i := range 1024 {
		if set.IsSet(i) {
			if s != "" {
				s += ","
			}
			s += fmt.Sprint(i)
		}
	}
	return s
}
