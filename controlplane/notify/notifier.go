package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Type is a notification's format.
type Type string

const (
	Webhook Type = "webhook" // the Event as JSON
	Slack   Type = "slack"   // a Slack incoming-webhook message with blocks
	Teams   Type = "teams"   // a Microsoft Teams MessageCard
)

// Types lists every type.
var Types = []Type{Webhook, Slack, Teams}

// Validate rejects an unknown type.
func (t Type) Validate() error {
	for _, k := range Types {
		if t == k {
			return nil
		}
	}
	return fmt.Errorf("unknown type %q (want webhook, slack or teams)", t)
}

// Target is one configured notification.
type Target struct {
	Name     string
	Type     Type
	URL      string // a secret: never logged
	Events   []Kind
	Services []string
}

// Options tune delivery.
type Options struct {
	// Queue is how many events wait per target (256); when full the
	// oldest is dropped and counted.
	Queue int
	// Attempts per event (5) and the first retry's delay (500ms), doubled
	// each time up to 8s.
	Attempts int
	Backoff  time.Duration
	// Timeout of one HTTP attempt (5s).
	Timeout time.Duration
	Client  *http.Client
	Log     *slog.Logger
	Reg     prometheus.Registerer
}

// Notifier delivers events to its targets in the background: Send never
// blocks. Each target has its own queue and worker, so a slow receiver
// holds up only itself.
type Notifier struct {
	opts    Options
	sinks   []*sink
	results *prometheus.CounterVec
}

type sink struct {
	t       Target
	ch      chan Event
	mu      sync.Mutex
	lastErr string
	lastAt  time.Time
}

// Status is a target's last delivery error ("" if none since it last
// succeeded).
type Status struct {
	Name      string    `json:"name"`
	LastError string    `json:"last_error,omitempty"`
	At        time.Time `json:"at,omitempty"`
}

// New builds a notifier; Run starts its workers.
func New(targets []Target, o Options) *Notifier {
	if o.Queue <= 0 {
		o.Queue = 256
	}
	if o.Attempts <= 0 {
		o.Attempts = 5
	}
	if o.Backoff <= 0 {
		o.Backoff = 500 * time.Millisecond
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Client == nil {
		o.Client = &http.Client{}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	n := &Notifier{opts: o, results: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bg_notifications_total",
		Help: "Notifications by target name and result (sent, failed: every attempt failed, dropped: the queue was full).",
	}, []string{"name", "result"})}
	for _, t := range targets {
		n.sinks = append(n.sinks, &sink{t: t, ch: make(chan Event, o.Queue)})
		for _, r := range []string{"sent", "failed", "dropped"} {
			n.results.WithLabelValues(t.Name, r)
		}
	}
	if o.Reg != nil {
		o.Reg.MustRegister(n.results)
	}
	return n
}

// Run delivers until ctx ends.
func (n *Notifier) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, s := range n.sinks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.work(ctx, s)
		}()
	}
	wg.Wait()
}

// Send queues ev for every target that wants it. It never blocks.
func (n *Notifier) Send(ev Event) {
	if n == nil {
		return
	}
	for _, s := range n.sinks {
		if !Matches(ev, s.t.Events, s.t.Services) {
			continue
		}
		for {
			select {
			case s.ch <- ev:
			default:
				select {
				case <-s.ch: // drop the oldest
					n.results.WithLabelValues(s.t.Name, "dropped").Inc()
				default:
				}
				continue
			}
			break
		}
	}
}

// Statuses are the targets' last errors.
func (n *Notifier) Statuses() []Status {
	if n == nil {
		return nil
	}
	out := make([]Status, 0, len(n.sinks))
	for _, s := range n.sinks {
		s.mu.Lock()
		out = append(out, Status{Name: s.t.Name, LastError: s.lastErr, At: s.lastAt})
		s.mu.Unlock()
	}
	return out
}

func (n *Notifier) work(ctx context.Context, s *sink) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-s.ch:
			n.deliver(ctx, s, ev)
		}
	}
}

// deliver tries an event up to Attempts times with exponential backoff.
func (n *Notifier) deliver(ctx context.Context, s *sink, ev Event) {
	body, ctype, err := Render(s.t.Type, ev)
	if err != nil {
		n.fail(s, ev, err)
		return
	}
	wait := n.opts.Backoff
	for attempt := 1; ; attempt++ {
		err = n.post(ctx, s.t.URL, ctype, body)
		if err == nil {
			n.results.WithLabelValues(s.t.Name, "sent").Inc()
			s.mu.Lock()
			s.lastErr, s.lastAt = "", time.Time{}
			s.mu.Unlock()
			return
		}
		if attempt >= n.opts.Attempts || ctx.Err() != nil {
			n.fail(s, ev, err)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 8*time.Second)
	}
}

func (n *Notifier) fail(s *sink, ev Event, err error) {
	n.results.WithLabelValues(s.t.Name, "failed").Inc()
	s.mu.Lock()
	s.lastErr, s.lastAt = err.Error(), time.Now()
	s.mu.Unlock()
	n.opts.Log.Warn("notification not delivered", "notification", s.t.Name, "event", ev.Kind, "service", ev.Service, "release", ev.Release, "error", err)
}

func (n *Notifier) post(ctx context.Context, url, ctype string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, n.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("bad url: %w", redact(err, url))
	}
	req.Header.Set("Content-Type", ctype)
	resp, err := n.opts.Client.Do(req)
	if err != nil {
		return redact(err, url)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(msg)))
	}
	return nil
}

// redact keeps a webhook URL (a secret for Slack and Teams) out of errors.
func redact(err error, url string) error {
	if url == "" {
		return err
	}
	return fmt.Errorf("%s", strings.ReplaceAll(err.Error(), url, "<url>"))
}

// Render formats ev for a target type: the body and its content type.
func Render(t Type, ev Event) ([]byte, string, error) {
	switch t {
	case Webhook:
		b, err := json.Marshal(ev)
		return b, "application/json", err
	case Slack:
		text := Summary(ev)
		blocks := []any{map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": "*" + text + "*"}}}
		for _, fields := range slackFields(ev) {
			blocks = append(blocks, map[string]any{"type": "section", "fields": fields})
		}
		msg := map[string]any{"text": text, "blocks": blocks}
		b, err := json.Marshal(msg)
		return b, "application/json", err
	case Teams:
		facts := []map[string]string{}
		for _, f := range facts2(ev) {
			facts = append(facts, map[string]string{"name": f[0], "value": f[1]})
		}
		card := map[string]any{
			"@type": "MessageCard", "@context": "https://schema.org/extensions",
			"summary": Summary(ev), "title": Summary(ev), "themeColor": color(ev.Kind),
			"sections": []any{map[string]any{"facts": facts}},
		}
		if ev.Link != "" {
			card["potentialAction"] = []any{map[string]any{"@type": "OpenUri", "name": "Status", "targets": []any{map[string]string{"os": "default", "uri": ev.Link}}}}
		}
		b, err := json.Marshal(card)
		return b, "application/json", err
	}
	return nil, "", Type(t).Validate()
}

// Summary is one line for people.
func Summary(ev Event) string {
	what := ev.Service
	if what == "" {
		what = "release " + ev.Release
	}
	s := fmt.Sprintf("bg: %s %s", what, strings.ReplaceAll(string(ev.Kind), "_", " "))
	if ev.From != "" && ev.To != "" {
		s += fmt.Sprintf(" (%s → %s, %d%% green)", ev.From, ev.To, ev.Split)
	}
	return s
}

func facts2(ev Event) [][2]string {
	var out [][2]string
	add := func(k, v string) {
		if v != "" && v != "0" {
			out = append(out, [2]string{k, v})
		}
	}
	add("Service", ev.Service)
	add("Release", ev.Release)
	if ev.From != "" {
		add("Switch", fmt.Sprintf("%s → %s", ev.From, ev.To))
	}
	add("Green", fmt.Sprintf("%d%%", ev.Split))
	if ev.Steps > 0 {
		add("Step", fmt.Sprintf("%d/%d", ev.Step, ev.Steps))
	}
	add("Verdict", ev.Verdict)
	add("Cause", string(ev.Cause))
	add("Reason", ev.Reason)
	add("Actor", ev.Actor)
	if ev.Generation > 0 {
		add("Generation", fmt.Sprint(ev.Generation))
	}
	add("Status", ev.Link)
	return out
}

// slackFields are the event's facts as Slack section fields, in sections
// of at most 10 (Slack refuses a section with more), so no fact is lost.
func slackFields(ev Event) [][]any {
	var out [][]any
	for i, f := range facts2(ev) {
		if i%10 == 0 {
			out = append(out, nil)
		}
		out[len(out)-1] = append(out[len(out)-1], map[string]any{"type": "mrkdwn", "text": "*" + f[0] + "*\n" + f[1]})
	}
	return out
}

func color(k Kind) string {
	switch k {
	case RolledBack, ReleaseRolledBack, Aborted, ReleaseAborted:
		return "D93F0B"
	case Promoted, ReleasePromoted:
		return "2EB67D"
	}
	return "0076D7"
}
