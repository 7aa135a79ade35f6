package notify

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/bgctl/bg/controlplane/model"
)

var update = flag.Bool("update", false, "rewrite the golden payloads in testdata/")

// The payloads each target type gets, byte for byte, for a few events:
// what a Slack workspace or a Teams channel shows is part of bg's
// interface. `go test ./controlplane/notify/ -run TestGoldenPayloads
// -update` rewrites them; review the diff.
func TestGoldenPayloads(t *testing.T) {
	events := map[string]Event{
		"rolled_back": {Kind: RolledBack, Service: "web", From: model.Blue, To: model.Green, Split: 0, Step: 2, Steps: 3,
			Verdict: "fail", Reason: "candidate 5% vs baseline 0.1% errors since the switch began; evidence e=143 ≥ 100", Cause: model.CauseAnalysisFailed,
			Actor: "bg:r1", Generation: 7, At: t0, Link: "https://bg.example:9090/v1/services/web"},
		"promoted": {Kind: Promoted, Service: "api", Release: "checkout-4", From: model.Green, To: model.Blue, Split: 0, Step: 3, Steps: 3,
			Verdict: "pass", Actor: "ci:deploy", Generation: 12, At: t0},
		// Eleven facts: more than one Slack section holds.
		"release_member_rolled_back": {Kind: RolledBack, Service: "auth", Release: "checkout-5", From: model.Blue, To: model.Green, Split: 0, Step: 1, Steps: 4,
			Verdict: "fail", Reason: "analysis failed", Cause: model.CauseAnalysisFailed, Actor: "bg:r1", Generation: 3, At: t0,
			Link: "https://bg.example:9090/v1/services/auth"},
		"override":            {Kind: Override, Service: "web", Split: 100, Reason: "force; hotfix for INC-42", Actor: "alice", Generation: 9, At: t0},
		"release_rolled_back": {Kind: ReleaseRolledBack, Release: "checkout-5", Reason: "auth: consumer_regressed", Actor: "bg:r2", At: t0},
	}
	for name, ev := range events {
		for _, typ := range []Type{Webhook, Slack, Teams} {
			t.Run(name+"/"+string(typ), func(t *testing.T) {
				body, ctype, err := Render(typ, ev)
				if err != nil {
					t.Fatal(err)
				}
				if ctype != "application/json" || !json.Valid(body) {
					t.Fatalf("content type %q, valid JSON %v: %s", ctype, json.Valid(body), body)
				}
				if typ == Slack {
					var msg struct {
						Blocks []struct {
							Fields []any `json:"fields"`
						} `json:"blocks"`
					}
					if err := json.Unmarshal(body, &msg); err != nil {
						t.Fatal(err)
					}
					for i, b := range msg.Blocks {
						if len(b.Fields) > 10 {
							t.Errorf("Slack block %d has %d fields; Slack refuses more than 10", i, len(b.Fields))
						}
					}
				}
				var pretty bytes.Buffer
				if err := json.Indent(&pretty, body, "", "  "); err != nil {
					t.Fatal(err)
				}
				pretty.WriteByte('\n')
				path := filepath.Join("testdata", "golden", name+"."+string(typ)+".json")
				if *update {
					if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run with -update to create it)", err)
				}
				if !bytes.Equal(pretty.Bytes(), want) {
					t.Errorf("%s differs from the golden file:\n--- got\n%s\n--- want\n%s", path, pretty.Bytes(), want)
				}
			})
		}
	}
}
