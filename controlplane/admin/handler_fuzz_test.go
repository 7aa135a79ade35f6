package admin

import (
	"net/http"
	"testing"
)

// FuzzChangeHandler drives the real admin handler with arbitrary bodies:
// whatever it rejects (4xx) must not have reached the controller, so bad
// input never changes anything.
func FuzzChangeHandler(f *testing.F) {
	for _, s := range []string{`{"to":"green"}`, `{"to":"green","steps":[10,100],"bake":"1s"}`, `{"to":"purple"}`, `{`, `{"instant":true}`, `{"timeout":"-1s"}`, ``} {
		f.Add("switch", s)
		f.Add("abort", s)
		f.Add("promote", s)
	}
	f.Fuzz(func(t *testing.T, op, body string) {
		switch op {
		case "switch", "abort", "pause", "resume", "promote":
		default:
			return
		}
		r := newRig(t, "")
		resp, _ := r.do(t, http.MethodPost, "/v1/services/web/"+op, "", body)
		if resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusNotFound {
			if calls := r.ctrl.Calls(); len(calls) != 0 {
				t.Fatalf("HTTP %d for %q but the controller was called: %v", resp.StatusCode, body, calls)
			}
		}
	})
}
