//go:build unix

package traffic_test

import (
	"syscall"
	"time"
)

// processCPU is user+system CPU time of this process; push costs are CPU
// bound on a small box, and CPU per op is steadier than wall time.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
