package commands_test

import (
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bgctl/bg/cli/commands"
	"github.com/bgctl/bg/controlplane/model"
)

func sampleHistory() []model.HistoryEntry {
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	return []model.HistoryEntry{
		{Generation: 1, At: at, Actor: "bg:r1", Phase: model.PhaseStable, Stable: model.Blue},
		{Generation: 2, At: at.Add(time.Minute), Actor: "cli:ann@laptop (10.0.0.7:5123)", Reason: "release 42",
			FromGreen: 0, ToGreen: 10, Phase: model.PhaseSwitching, Stable: model.Blue,
			Detail: "switch s1 running step 1/2 (10%)", Override: "steps 10,100 instead of 1,5,25,50,100"},
		{Generation: 3, At: at.Add(2 * time.Minute), Actor: "bg:r1", Replica: "r1", Term: 2, Reason: "analysis passed",
			FromGreen: 10, ToGreen: 100, Phase: model.PhaseSwitched, Stable: model.Blue},
	}
}

func TestHistoryText(t *testing.T) {
	c := newFake()
	c.history = sampleHistory()
	addr := server(t, c, "")
	code, out, errOut := run(t, "--addr", addr, "history", "web")
	expect(t, code, out, errOut, commands.ExitOK)
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 4 || !regexp.MustCompile(`^TIME\s+GEN\s+ACTOR\s+SPLIT\s+PHASE\s+WHY$`).MatchString(lines[0]) {
		t.Fatalf("stdout =\n%s", out)
	}
	for i, want := range [][]string{
		{"2025-03-01T12:00:00Z", " 1 ", "bg:r1", "0% green", "stable", " -"},
		{"2025-03-01T12:01:00Z", " 2 ", "cli:ann@laptop (10.0.0.7:5123)", "0→10% green", "switching",
			"OVERRIDE: steps 10,100 instead of 1,5,25,50,100; release 42; switch s1 running step 1/2 (10%)"},
		{"2025-03-01T12:02:00Z", " 3 ", "10→100% green", "switched", "analysis passed"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i+1], w) {
				t.Errorf("row %d lacks %q: %q", i+1, w, lines[i+1])
			}
		}
	}
	if !slices.Equal(c.limits, []int{20}) {
		t.Errorf("limits sent %v, want the default [20]", c.limits)
	}
}

func TestHistoryLimit(t *testing.T) {
	for _, args := range [][]string{
		{"history", "web", "--limit", "2"},
		{"history", "--limit=2", "web"},
		{"history", "-n", "2", "web", "-o", "json"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			c := newFake()
			c.history = sampleHistory()
			addr := server(t, c, "")
			code, out, errOut := run(t, append([]string{"--addr", addr}, args...)...)
			expect(t, code, out, errOut, commands.ExitOK)
			if !slices.Equal(c.limits, []int{2}) {
				t.Errorf("limits sent %v, want [2]", c.limits)
			}
			if strings.Contains(out, "2025-03-01T12:00:00Z") || !strings.Contains(out, "analysis passed") {
				t.Errorf("want only the newest two entries:\n%s", out)
			}
		})
	}
}

func TestHistoryJSON(t *testing.T) {
	c := newFake()
	c.history = sampleHistory()
	addr := server(t, c, "")
	code, out, errOut := run(t, "--addr", addr, "history", "web", "-o", "json")
	expect(t, code, out, errOut, commands.ExitOK)
	var got []model.HistoryEntry
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("stdout is not a JSON list of entries: %v\n%s", err, out)
	}
	if !reflect.DeepEqual(got, sampleHistory()) {
		t.Errorf("got %+v\nwant %+v", got, sampleHistory())
	}
}

func TestHistoryEmpty(t *testing.T) {
	c := newFake()
	addr := server(t, c, "")
	code, out, errOut := run(t, "--addr", addr, "history", "web")
	expect(t, code, out, errOut, commands.ExitOK)
	if out != "web: no history\n" {
		t.Errorf("stdout = %q", out)
	}
	code, out, errOut = run(t, "--addr", addr, "history", "web", "-o", "json")
	expect(t, code, out, errOut, commands.ExitOK)
	if strings.TrimSpace(out) != "[]" {
		t.Errorf("json stdout = %q, want []", out)
	}
}

func TestHistoryUnsafeText(t *testing.T) {
	c := newFake()
	c.history = []model.HistoryEntry{{Generation: 4, At: time.Unix(0, 0), Actor: "api (1.2.3.4:5)",
		Reason: "line one\nline two\t\x1b[31mred", Phase: model.PhaseAborted}}
	addr := server(t, c, "")
	code, out, errOut := run(t, "--addr", addr, "history", "web")
	expect(t, code, out, errOut, commands.ExitOK)
	if strings.Count(out, "\n") != 2 || strings.Contains(out, "\x1b") || !strings.Contains(out, "line one line two  [31mred") {
		t.Errorf("stored text reached the terminal raw:\n%q", out)
	}
}

func TestHistoryErrors(t *testing.T) {
	c := newFake()
	c.history = sampleHistory()
	addr := server(t, c, "")
	cases := []struct {
		name    string
		args    []string
		code    int
		wantErr string
	}{
		{"unknown service", []string{"history", "nosuch"}, commands.ExitUsage, `unknown service "nosuch"`},
		{"no service", []string{"history"}, commands.ExitUsage, "SERVICE"},
		{"two services", []string{"history", "web", "api"}, commands.ExitUsage, "SERVICE"},
		{"limit zero", []string{"history", "web", "--limit", "0"}, commands.ExitUsage, "--limit"},
		{"limit too big", []string{"history", "web", "--limit", "10001"}, commands.ExitUsage, "--limit"},
		{"limit not a number", []string{"history", "web", "--limit", "all"}, commands.ExitUsage, "all"},
		{"bad output", []string{"history", "web", "-o", "yaml"}, commands.ExitUsage, "yaml"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := run(t, append([]string{"--addr", addr}, tc.args...)...)
			expect(t, code, out, errOut, tc.code, tc.wantErr)
		})
	}
	// Only the unknown service reached the control plane.
	if !slices.Equal(c.limits, []int{20}) {
		t.Errorf("limits sent %v, want [20]", c.limits)
	}
}

func TestHistoryHelp(t *testing.T) {
	code, out, errOut := run(t, "history", "--help")
	expect(t, code, out, errOut, commands.ExitOK)
	for _, w := range []string{"bg history web", "--limit", "-o json", "OVERRIDE"} {
		if !strings.Contains(out, w) {
			t.Errorf("history --help lacks %q:\n%s", w, out)
		}
	}
}

// Every command tells the control plane who sent it.
func TestCommandsSendActor(t *testing.T) {
	c := newFake()
	addr := server(t, c, "")
	code, out, errOut := run(t, "--addr", addr, "switch", "web", "--instant", "--to", "green")
	expect(t, code, out, errOut, commands.ExitOK)
	host, _ := os.Hostname()
	re := regexp.MustCompile(`^cli:[^@ ]+@` + regexp.QuoteMeta(host) + ` \(127\.0\.0\.1:\d+\)$`)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.actors) != 1 || !re.MatchString(c.actors[0]) {
		t.Errorf("actors %q, want one matching %s", c.actors, re)
	}
}
