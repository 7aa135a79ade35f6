package admin

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	apiv1 "github.com/bgctl/bg/controlplane/api/v1"
	"github.com/bgctl/bg/controlplane/model"
)

// FuzzBodyDecoders covers the decoders FuzzChangeHandler does not reach:
// the preview body and the release start and command bodies. None panics;
// too large a body is refused; what decodePreview accepts is coherent; and
// what decodeStrict accepts encodes back to a body it accepts again.
func FuzzBodyDecoders(f *testing.F) {
	for _, s := range []string{`{"to":"green"}`, `{"off":true}`, `{"to":"green","off":true}`, `{"timeout":"90m"}`,
		`{"to":"blue","force":true,"reason":"x"}`, `{"group":"checkout"}`, `{"services":["web","api"],"reason":"r"}`,
		`{"reason":"why"}`, `{"x":1}`, `{}{}`, `[`, ``, `null`} {
		for _, kind := range []string{"preview", "release", "release-command"} {
			f.Add(kind, s)
		}
	}
	f.Fuzz(func(t *testing.T, kind, body string) {
		switch kind {
		case "preview":
			req, err := decodePreview(strings.NewReader(body))
			if err != nil {
				return
			}
			if req.To != "" && req.To != model.Blue && req.To != model.Green {
				t.Fatalf("%q: colour %q accepted", body, req.To)
			}
			if req.Off && req.To != "" {
				t.Fatalf("%q: off and to both accepted", body)
			}
			if req.Timeout < 0 || req.Timeout > time.Hour {
				t.Fatalf("%q: timeout %v accepted", body, req.Timeout)
			}
		case "release":
			var req apiv1.ReleaseRequest
			roundTrip(t, body, &req, func() any { return &apiv1.ReleaseRequest{} })
		case "release-command":
			var req apiv1.ReleaseCommand
			roundTrip(t, body, &req, func() any { return &apiv1.ReleaseCommand{} })
		}
	})
}

func roundTrip(t *testing.T, body string, v any, fresh func() any) {
	t.Helper()
	err := decodeStrict(strings.NewReader(body), v)
	if len(body) > maxBody && err == nil {
		t.Fatalf("a body of %d bytes accepted", len(body))
	}
	if err != nil {
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("%q: accepted but does not encode: %v", body, err)
	}
	if err := decodeStrict(strings.NewReader(string(b)), fresh()); err != nil {
		t.Fatalf("%q: accepted, re-encoded as %s, then refused: %v", body, b, err)
	}
}

// An oversized body is refused by every decoder, never read unbounded.
func TestBodyDecodersRefuseLargeBodies(t *testing.T) {
	big := `{"reason":"` + strings.Repeat("x", maxBody) + `"}`
	if _, err := decodePreview(strings.NewReader(big)); err == nil || !strings.Contains(err.Error(), "too large") {
		t.Errorf("preview: %v", err)
	}
	var req apiv1.ReleaseRequest
	if err := decodeStrict(strings.NewReader(big), &req); err == nil || !strings.Contains(err.Error(), "too large") {
		t.Errorf("release: %v", err)
	}
}
