package serve

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	apiv1 "github.com/bgctl/bg/controlplane/api/v1"
	"github.com/bgctl/bg/controlplane/config"
)

const reloadYAML = `
consul:
  address: 127.0.0.1:8500
xds:
  listen: 127.0.0.1:18000
admin:
  listen: 127.0.0.1:9090
services:
  - name: web
    port: 10000
`

// fakeApplier records what a reload prepared and committed.
type fakeApplier struct {
	mu        sync.Mutex
	fail      error
	prepared  []config.Change
	committed []config.Change
}

func (f *fakeApplier) prepare(_, _ *config.Config, ch config.Change) (func(), error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.prepared = append(f.prepared, ch)
	if f.fail != nil {
		return nil, f.fail
	}
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.committed = append(f.committed, ch)
	}, nil
}

func (f *fakeApplier) commits() []config.Change {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]config.Change(nil), f.committed...)
}

type reloadFixture struct {
	path  string
	r     *reloader
	apply *fakeApplier
	m     *reloadMetrics
}

func newReloadFixture(t *testing.T, body string) *reloadFixture {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bg.yaml")
	writeConfig(t, path, body)
	load := func() (*config.Config, error) { return config.LoadValid(path, nil) }
	cfg, err := load()
	if err != nil {
		t.Fatal(err)
	}
	f := &reloadFixture{path: path, apply: &fakeApplier{}, m: newReloadMetrics(prometheus.NewRegistry())}
	f.r = newReloader(ConfigSource{Path: path, Load: load}, cfg, f.apply, slog.New(slog.DiscardHandler), f.m)
	return f
}

func writeConfig(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path+".tmp", []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

func (f *reloadFixture) count(res apiv1.ReloadResult) int {
	return int(testutil.ToFloat64(f.m.total.WithLabelValues(string(res))))
}

func TestReloadResults(t *testing.T) {
	f := newReloadFixture(t, reloadYAML)
	start := f.r.Status()
	if start.Generation != 1 || start.Hash == "" || start.Last != nil {
		t.Fatalf("status at start: %+v", start)
	}

	// Nothing changed: success, same generation, nothing to apply.
	if a := f.r.Reload(apiv1.TriggerSignal); a.Result != apiv1.ReloadSuccess || a.Change != "no change" || a.Generation != 1 {
		t.Fatalf("same file: %+v", a)
	}

	// An invalid file: every problem named, nothing prepared.
	writeConfig(t, f.path, strings.Replace(reloadYAML, "port: 10000", "port: 10000\n    protocol: http3\n    colour: blue", 1))
	a := f.r.Reload(apiv1.TriggerAPI)
	if a.Result != apiv1.ReloadInvalid || !strings.Contains(a.Error, "protocol") || !strings.Contains(a.Error, "colour") || a.Generation != 1 || a.Hash != start.Hash {
		t.Fatalf("invalid file: %+v", a)
	}

	// A restart-only change: refused, naming the key; nothing prepared.
	writeConfig(t, f.path, strings.Replace(reloadYAML, "18000", "18001", 1)+"  - name: cart\n")
	a = f.r.Reload(apiv1.TriggerAPI)
	if a.Result != apiv1.ReloadRefused || a.Error != "xds.listen cannot change without a restart" {
		t.Fatalf("restart-only change: %+v", a)
	}
	if len(f.apply.prepared) != 1 { // only the first, unchanged reload
		t.Fatalf("prepared %v", f.apply.prepared)
	}

	// A failing prepare: invalid, nothing committed, the config stays.
	writeConfig(t, f.path, reloadYAML+"  - name: cart\n")
	f.apply.fail = errors.New("notifications[0].url_file: no such file")
	a = f.r.Reload(apiv1.TriggerAPI)
	if a.Result != apiv1.ReloadInvalid || !strings.Contains(a.Error, "url_file") || len(f.apply.commits()) != 1 {
		t.Fatalf("failed prepare: %+v, committed %v", a, f.apply.commits())
	}

	// Then it works: applied, a new generation and hash.
	f.apply.fail = nil
	a = f.r.Reload(apiv1.TriggerSignal)
	if a.Result != apiv1.ReloadSuccess || a.Change != "added cart" || a.Generation != 2 || a.Hash == start.Hash {
		t.Fatalf("good file: %+v", a)
	}
	if c := f.apply.commits(); len(c) != 2 || c[1].String() != "added cart" {
		t.Fatalf("committed %v", c)
	}
	// The new config is what the next reload compares with.
	if a = f.r.Reload(apiv1.TriggerSignal); a.Change != "no change" || a.Generation != 2 {
		t.Fatalf("reload after: %+v", a)
	}

	for res, want := range map[apiv1.ReloadResult]int{apiv1.ReloadSuccess: 3, apiv1.ReloadInvalid: 2, apiv1.ReloadRefused: 1} {
		if got := f.count(res); got != want {
			t.Errorf("bg_config_reload_total{result=%q} = %d, want %d", res, got, want)
		}
	}
	if g := testutil.ToFloat64(f.m.generation); g != 2 {
		t.Errorf("bg_config_generation = %v", g)
	}
	st := f.r.Status()
	if st.Generation != 2 || st.Last == nil || st.Last.Result != apiv1.ReloadSuccess || st.Last.Trigger != apiv1.TriggerSignal {
		t.Fatalf("status: %+v", st)
	}
	for _, res := range apiv1.ReloadResults {
		if err := res.Validate(); err != nil {
			t.Error(err)
		}
	}
	if apiv1.ReloadResult("partial").Validate() == nil {
		t.Error("an unknown result validated")
	}
}

func TestReloadWithoutAFile(t *testing.T) {
	cfg, err := config.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	m := newReloadMetrics(nil)
	r := newReloader(ConfigSource{}, cfg, &fakeApplier{}, slog.New(slog.DiscardHandler), m)
	if a := r.Reload(apiv1.TriggerSignal); a.Result != apiv1.ReloadInvalid || !strings.Contains(a.Error, "without --config") {
		t.Fatalf("%+v", a)
	}
}

// With config.watch the file's edits are reloaded; a bad edit is tried
// once, not on every tick; with it off, edits wait for a trigger.
func TestReloadWatch(t *testing.T) {
	f := newReloadFixture(t, reloadYAML+"config:\n  watch: true\n")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go f.r.watch(ctx, 10*time.Millisecond)
	waitFor := func(what string, ok func(apiv1.ReloadStatus) bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !ok(f.r.Status()) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: status %+v last %+v", what, f.r.Status(), f.r.Status().Last)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	writeConfig(t, f.path, reloadYAML+"  - name: cart\nconfig:\n  watch: true\n")
	waitFor("the edit", func(st apiv1.ReloadStatus) bool { return st.Generation == 2 && st.Last.Trigger == apiv1.TriggerWatch })

	writeConfig(t, f.path, reloadYAML+"  - name: Cart\nconfig:\n  watch: true\n")
	waitFor("the bad edit", func(st apiv1.ReloadStatus) bool { return st.Last.Result == apiv1.ReloadInvalid })
	time.Sleep(100 * time.Millisecond) // ten ticks
	if n := f.count(apiv1.ReloadInvalid); n != 1 {
		t.Fatalf("a bad file was tried %d times", n)
	}

	// Watch off (by a reload): edits wait.
	writeConfig(t, f.path, reloadYAML+"  - name: cart\n")
	waitFor("watch off", func(st apiv1.ReloadStatus) bool { return !st.Watch && st.Generation == 3 })
	writeConfig(t, f.path, reloadYAML)
	time.Sleep(100 * time.Millisecond)
	if st := f.r.Status(); st.Generation != 3 {
		t.Fatalf("an edit was reloaded with watch off: %+v", st)
	}
	if a := f.r.Reload(apiv1.TriggerSignal); a.Change != "removed cart" {
		t.Fatalf("SIGHUP after: %+v", a)
	}

	// Watch on again (by a reload): the watcher, asleep without a timer
	// while it was off, follows edits again.
	writeConfig(t, f.path, reloadYAML+"config:\n  watch: true\n")
	if a := f.r.Reload(apiv1.TriggerSignal); a.Result != apiv1.ReloadSuccess || !f.r.Status().Watch {
		t.Fatalf("watch on: %+v", a)
	}
	gen := f.r.Status().Generation
	writeConfig(t, f.path, reloadYAML+"  - name: cart\nconfig:\n  watch: true\n")
	waitFor("an edit once watch is on again", func(st apiv1.ReloadStatus) bool {
		return st.Generation == gen+1 && st.Last.Trigger == apiv1.TriggerWatch
	})
}
