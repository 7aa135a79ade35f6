package harness_test

import (
	"os"
	"testing"
	"time"

	"github.com/bgctl/bg/e2e/harness"
)

func TestZZHang(t *testing.T) {
	if os.Getenv("ZZ_HANG") == "" {
		t.Skip()
	}
	harness.StartConsul(t)
	os.WriteFile("/tmp/zz-ready", []byte("1"), 0o644)
	time.Sleep(time.Minute)
}
