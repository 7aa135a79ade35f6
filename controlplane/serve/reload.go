package serve

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	promclient "github.com/prometheus/client_golang/prometheus"

	apiv1 "github.com/bgctl/bg/controlplane/api/v1"
	"github.com/bgctl/bg/controlplane/config"
)

// ConfigSource is where a reload reads the config: the file (hashed, and
// watched with config.watch) and the loader that reads and validates it
// exactly as at start (config.LoadValid with the same overrides).
type ConfigSource struct {
	Path string
	Load func() (*config.Config, error)
}

// applier applies a Change that Diff found live-applicable. prepare does
// everything that can fail (nothing is changed yet); its result's commit
// cannot fail. A reload is all or nothing.
type applier interface {
	prepare(old, next *config.Config, ch config.Change) (commit func(), err error)
}

// reloader runs one reload at a time and keeps what status shows.
type reloader struct {
	src   ConfigSource
	apply applier
	log   *slog.Logger
	m     *reloadMetrics
	now   func() time.Time

	mu      sync.Mutex // one reload at a time; guards the fields below
	cfg     *config.Config
	hash    string
	gen     uint64
	since   time.Time
	last    *apiv1.ReloadAttempt
	tried   string // hash of the last file a watch reload tried
	watchOn bool
	// watchSet wakes watch when a reload turns config.watch on or off:
	// with it off, watch sleeps without a timer.
	watchSet chan struct{}
}

func newReloader(src ConfigSource, cfg *config.Config, apply applier, log *slog.Logger, m *reloadMetrics) *reloader {
	r := &reloader{src: src, apply: apply, log: log, m: m, now: time.Now, cfg: cfg, gen: 1, watchOn: cfg.Config.Watch,
		watchSet: make(chan struct{}, 1)}
	r.since = r.now()
	if src.Path != "" {
		if b, err := os.ReadFile(src.Path); err == nil {
			r.hash = hashOf(b)
		}
	}
	r.tried = r.hash
	m.generation.Set(1)
	m.lastSuccess.Set(float64(r.since.Unix()))
	return r
}

func hashOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// ErrNoConfigFile: bg was started without a config file, so there is
// nothing to reload.
var ErrNoConfigFile = errors.New("bg serve was started without --config: there is no file to reload")

// Reload reads and validates the file, compares it with the running
// config and applies the difference, or changes nothing and says why.
func (r *reloader) Reload(trigger apiv1.ReloadTrigger) apiv1.ReloadAttempt {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reloadLocked(trigger, "")
}

func (r *reloader) reloadLocked(trigger apiv1.ReloadTrigger, hash string) apiv1.ReloadAttempt {
	a := apiv1.ReloadAttempt{Trigger: trigger, At: r.now().UTC()}
	fail := func(res apiv1.ReloadResult, err error) apiv1.ReloadAttempt {
		a.Result, a.Error, a.Generation, a.Hash = res, err.Error(), r.gen, r.hash
		r.m.total.WithLabelValues(string(res)).Inc()
		r.last = &a
		r.log.Error("config reload failed; the running config stays in force", "trigger", trigger, "result", res, "error", err)
		return a
	}
	if r.src.Load == nil || r.src.Path == "" {
		return fail(apiv1.ReloadInvalid, ErrNoConfigFile)
	}
	if hash == "" {
		b, err := os.ReadFile(r.src.Path)
		if err != nil {
			return fail(apiv1.ReloadInvalid, fmt.Errorf("read config: %w", err))
		}
		hash = hashOf(b)
	}
	next, err := r.src.Load()
	if err != nil {
		return fail(apiv1.ReloadInvalid, err)
	}
	ch, err := config.Diff(r.cfg, next)
	if err != nil {
		return fail(apiv1.ReloadRefused, err)
	}
	commit, err := r.apply.prepare(r.cfg, next, ch)
	if busy := (*switchRunningError)(nil); errors.As(err, &busy) {
		return fail(apiv1.ReloadRefused, busy)
	}
	if err != nil {
		return fail(apiv1.ReloadInvalid, err)
	}
	commit()
	if !ch.Empty() {
		r.gen++
		r.since = a.At
	}
	if next.Config.Watch != r.watchOn {
		select {
		case r.watchSet <- struct{}{}:
		default:
		}
	}
	r.cfg, r.hash, r.watchOn = next, hash, next.Config.Watch
	a.Result, a.Change, a.Generation, a.Hash = apiv1.ReloadSuccess, ch.String(), r.gen, r.hash
	r.last = &a
	r.m.total.WithLabelValues(string(apiv1.ReloadSuccess)).Inc()
	r.m.lastSuccess.Set(float64(a.At.Unix()))
	r.m.generation.Set(float64(r.gen))
	r.log.Info("config reloaded", "trigger", trigger, "change", a.Change, "generation", r.gen, "hash", r.hash)
	return a
}

// Status is the config in force and the last reload.
func (r *reloader) Status() apiv1.ReloadStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := apiv1.ReloadStatus{Generation: r.gen, Hash: r.hash, Since: r.since.UTC(), Watch: r.watchOn}
	if r.last != nil {
		l := *r.last
		st.Last = &l
	}
	return st
}

// watch reloads when the file's content changes, while config.watch is
// on: every interval it stats the file and, when its size or mtime moved,
// hashes it. A file that fails is not tried again until it changes.
func (r *reloader) watch(ctx context.Context, every time.Duration) {
	var lastMod time.Time
	var lastSize int64 = -1
	t := time.NewTimer(every)
	defer t.Stop()
	for {
		r.mu.Lock()
		on := r.watchOn && r.src.Path != ""
		r.mu.Unlock()
		var tick <-chan time.Time
		if on {
			t.Reset(every)
			tick = t.C
		}
		select {
		case <-ctx.Done():
			return
		case <-r.watchSet:
			continue
		case <-tick:
		}
		fi, err := os.Stat(r.src.Path)
		if err != nil || fi.ModTime().Equal(lastMod) && fi.Size() == lastSize {
			continue
		}
		b, err := os.ReadFile(r.src.Path)
		if err != nil {
			continue
		}
		lastMod, lastSize = fi.ModTime(), fi.Size()
		h := hashOf(b)
		r.mu.Lock()
		if h != r.hash && h != r.tried {
			r.tried = h
			r.reloadLocked(apiv1.TriggerWatch, h)
		}
		r.mu.Unlock()
	}
}

// reloadMetrics are bg_config_reload_total{result},
// bg_config_reload_last_success_timestamp_seconds and bg_config_generation.
type reloadMetrics struct {
	total       *promclient.CounterVec
	lastSuccess promclient.Gauge
	generation  promclient.Gauge
}

func newReloadMetrics(reg promclient.Registerer) *reloadMetrics {
	m := &reloadMetrics{
		total: promclient.NewCounterVec(promclient.CounterOpts{
			Name: "bg_config_reload_total",
			Help: "Config reloads by result: success (the file is in force), invalid (it did not read or validate), refused (it changes a setting that needs a restart). The running config stays in force unless success.",
		}, []string{"result"}),
		lastSuccess: promclient.NewGauge(promclient.GaugeOpts{
			Name: "bg_config_reload_last_success_timestamp_seconds",
			Help: "When the config in force was loaded (start or the last successful reload), Unix seconds.",
		}),
		generation: promclient.NewGauge(promclient.GaugeOpts{
			Name: "bg_config_generation",
			Help: "The config generation in force: 1 at start, one more for each reload that changed something.",
		}),
	}
	for _, res := range apiv1.ReloadResults {
		m.total.WithLabelValues(string(res))
	}
	if reg != nil {
		reg.MustRegister(m.total, m.lastSuccess, m.generation)
	}
	return m
}
