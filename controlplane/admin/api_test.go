package admin

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/bgctl/bg/controlplane/model"
)

func TestDecodeChange(t *testing.T) {
	cases := []struct {
		body     string
		isSwitch bool
		to       model.Color
		timeout  time.Duration
		wantErr  string
	}{
		{body: `{"to":"blue"}`, isSwitch: true, to: model.Blue},
		{body: "\n\t{\"to\":\"green\",\"timeout\":\"1h\"}\r\n", isSwitch: true, to: model.Green, timeout: time.Hour},
		{body: `{"timeout":"1ns"}`, timeout: time.Nanosecond},
		{body: ``},
		{body: `   `},
		{body: `null`},
		{body: `{}`},
		{body: `null`, isSwitch: true}, // no colour: the controller picks the idle one
		{body: `{}`, isSwitch: true},
		{body: `{"to":""}`, isSwitch: true},
		{body: `{"force":true}`, isSwitch: true}, // a forced switch's reason is the controller's to check
		{body: `{"force":true}`},
		{body: `{"to":"blue"}}`, isSwitch: true, wantErr: "trailing"},
		{body: `{"to":"blue"}]`, isSwitch: true, wantErr: "trailing"},
		{body: `{}{}`, wantErr: "trailing"},
		{body: `{"to":"blue","to":"red"}`, isSwitch: true, wantErr: "red"},
		{body: `{"timeout":"3600000000001ns"}`, wantErr: "timeout"},
		{body: `{"to":""}`, wantErr: ""}, // an empty "to" is the same as none on abort
		{body: `{"reason":"` + strings.Repeat("a", maxBody) + `"}`, wantErr: "too large"},
	}
	for _, tc := range cases {
		name := tc.body
		if len(name) > 40 {
			name = name[:40]
		}
		t.Run(name, func(t *testing.T) {
			_, to, timeout, err := decodeChange(strings.NewReader(tc.body), tc.isSwitch)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if to != tc.to || timeout != tc.timeout {
				t.Errorf("got (%q, %v), want (%q, %v)", to, timeout, tc.to, tc.timeout)
			}
		})
	}
}

func TestDecodeChangeAtLimit(t *testing.T) {
	pad := maxBody - len(`{"to":"blue"}`)
	body := `{"to":"blue"}` + strings.Repeat(" ", pad)
	if _, _, _, err := decodeChange(strings.NewReader(body), true); err != nil {
		t.Fatalf("a body of exactly maxBody bytes was rejected: %v", err)
	}
	if _, _, _, err := decodeChange(strings.NewReader(body+" "), true); err == nil {
		t.Fatal("a body one byte over maxBody was accepted")
	}
}

func TestDecodeChangeReadError(t *testing.T) {
	_, to, timeout, err := decodeChange(iotest.ErrReader(iotest.ErrTimeout), true)
	if err == nil || to != "" || timeout != 0 {
		t.Fatalf("got (%q, %v, %v), want an error and nothing else", to, timeout, err)
	}
}

// FuzzDecodeChange checks decodeChange never panics and never lets an
// invalid body through as something the controller would act on.
func FuzzDecodeChange(f *testing.F) {
	for _, s := range []string{
		``,
		`{}`,
		`null`,
		`{"to":"blue"}`,
		`{"to":"green","force":true,"reason":"release 42","timeout":"30s"}`,
		`{"to":"green","timeout":"1h"}`,
		`{"to":"green","timeout":"1h0m0.000000001s"}`,
		`{"to":"purple"}`,
		`{"to":"blue","colour":"x"}`,
		`{"to":"blue"} {}`,
		`{"to":"blue"}}`,
		`{"timeout":"-1s"}`,
		`{"reason":"\u00e9\ud800"}`,
		`[1,2,3]`,
	} {
		f.Add([]byte(s), true)
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, body []byte, isSwitch bool) {
		req, to, timeout, err := decodeChange(bytes.NewReader(body), isSwitch)
		if err != nil {
			if to != "" || timeout != 0 {
				t.Fatalf("error %v came with colour %q and timeout %v", err, to, timeout)
			}
			return
		}
		if len(body) > maxBody {
			t.Fatalf("accepted a %d-byte body", len(body))
		}
		if trimmed := bytes.TrimSpace(body); len(trimmed) > 0 && !json.Valid(trimmed) {
			t.Fatalf("accepted a body that is not one JSON value: %q", body)
		}
		if isSwitch {
			if to != model.Blue && to != model.Green && (to != "" || req.To != "") {
				t.Fatalf("switch accepted colour %q", to)
			}
			if string(to) != req.To {
				t.Fatalf("colour %q differs from the request's %q", to, req.To)
			}
		} else if to != "" || req.To != "" {
			t.Fatalf("abort accepted a colour (%q, %q)", to, req.To)
		}
		if req.Timeout == "" {
			if timeout != 0 {
				t.Fatalf("no timeout asked for, got %v", timeout)
			}
		} else if timeout <= 0 || timeout > time.Hour {
			t.Fatalf("timeout %v outside (0, 1h]", timeout)
		}
	})
}
