package bench

import (
	"syscall"
	"unsafe"
)

// threadCPU is the CPU time this OS thread has used (CLOCK_THREAD_CPUTIME_ID,
// nanoseconds, the scheduler's exact account). Time the thread spends
// waiting for a core, which other processes on a loaded machine cause, is
// not in it.
func threadCPU() int64 {
	var ts syscall.Timespec
	const clockThreadCPUTimeID = 3
	if _, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTimeID, uintptr(unsafe.Pointer(&ts)), 0); errno != 0 {
		return 0
	}
	return ts.Nano()
}
