//go:build !unix

package traffic_test

import "time"

func processCPU() (time.Duration, bool) { return 0, false }
