package commands_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/bgctl/bg/cli/commands"
)

// bg status says when a service has no Envoy listener (no port), in text and JSON.
func TestStatusNoEnvoyListener(t *testing.T) {
	c := newFake()
	addr := server(t, c, "")
	code, out, errOut := run(t, "--addr", addr, "status", "web")
	expect(t, code, out, errOut, commands.ExitOK)
	if strings.Contains(out, "envoy listener") {
		t.Errorf("a service with a port: %q", out)
	}

	c.status.NoEnvoyListener = true
	code, out, errOut = run(t, "--addr", addr, "status", "web")
	expect(t, code, out, errOut, commands.ExitOK)
	if want := "web: envoy listener: none (no port; proxyless gRPC clients only)\n"; !strings.HasSuffix(out, want) {
		t.Errorf("status lacks %q:\n%s", want, out)
	}
	code, out, errOut = run(t, "--addr", addr, "status", "web", "-o", "json")
	expect(t, code, out, errOut, commands.ExitOK)
	var st map[string]any
	if err := json.Unmarshal([]byte(out), &st); err != nil || st["no_envoy_listener"] != true {
		t.Errorf("JSON status %s (%v), want no_envoy_listener: true", out, err)
	}
}
