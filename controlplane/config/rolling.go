package config

import (
	"strings"
	"text/template"
	"time"

	"github.com/bgctl/bg/controlplane/fleetmetrics/prometheus"
	"github.com/bgctl/bg/controlplane/model"
)

// Rolling configures host-by-host switches of stateful services
// (strategy: rolling). Load fills absent keys from DefaultRolling.
type Rolling struct {
	// MaxUnavailable is how many slots may be draining or baking at once.
	MaxUnavailable int `mapstructure:"max_unavailable"`
	// MinAvailable: never fewer serving hosts than this.
	MinAvailable int `mapstructure:"min_available"`
	// DrainTimeout is how long an old host drains before it leaves.
	DrainTimeout time.Duration `mapstructure:"drain_timeout"`
	// Bake is how long a replacement must stay passing and healthy before
	// the next host moves (make-before-break).
	Bake time.Duration `mapstructure:"bake"`
	// ReplaceTimeout is how long to wait for a passing replacement of the
	// next slot before the roll fails and rolls back.
	ReplaceTimeout time.Duration `mapstructure:"replace_timeout"`
	// Interval is how often the roll is re-evaluated.
	Interval time.Duration `mapstructure:"interval"`

	// Judge is how the service's rolls are judged on metrics. It is no key
	// of its own: Load derives it from prometheus.address and the service's
	// analysis block (judgeRolls), so Params says it explicitly.
	Judge RollJudge `mapstructure:"-"`
}

// RollJudge is how a service's rolls are judged on metrics.
type RollJudge struct {
	// Metrics: Prometheus is configured and the service's analysis queries
	// tell a roll's new hosts from its old ones (rollQueryProblem). Then a
	// bake completes only on a healthy verdict (the analysis block's judge
	// parameters), and metrics unavailable for UnavailableBudget apply
	// OnUnavailable, as in a progressive switch. Without it a roll bakes
	// on time and Consul health alone.
	Metrics           bool
	UnavailableBudget time.Duration
	OnUnavailable     UnavailablePolicy
}

// Affinity keeps sessions on one host by hashing a header, or a cookie
// (Envoy only; Envoy mints it).
type Affinity struct {
	Header string `mapstructure:"header"`
	Cookie string `mapstructure:"cookie"`
}

// DefaultRolling are the rolling defaults.
func DefaultRolling() Rolling {
	return Rolling{MaxUnavailable: 1, MinAvailable: 1, DrainTimeout: 30 * time.Second, Bake: 30 * time.Second,
		ReplaceTimeout: 10 * time.Minute, Interval: time.Second}
}

// Params converts to the model's roll parameters. Whether metrics judge
// the roll comes from Judge, which Load fills: a Rolling built by hand is
// not judged.
func (r Rolling) Params() model.RollParams {
	p := model.RollParams{MaxUnavailable: r.MaxUnavailable, MinAvailable: r.MinAvailable,
		DrainTimeout: model.Duration(r.DrainTimeout), Bake: model.Duration(r.Bake),
		ReplaceTimeout: model.Duration(r.ReplaceTimeout), Interval: model.Duration(r.Interval)}
	if r.Judge.Metrics {
		p.Judged = true
		p.UnavailableBudget, p.OnUnavailable = model.Duration(r.Judge.UnavailableBudget), string(r.Judge.OnUnavailable)
	}
	return p
}

// judgeRolls fills each service's Rolling.Judge from the loaded config:
// rolls are judged when Prometheus is configured and the service's queries
// can tell new hosts from old. That includes blue-green services, which
// Consul meta (bg-strategy=rolling) can make rolling at run time; for a
// service declared rolling, Validate rejects queries that cannot.
func judgeRolls(c *Config) {
	for i := range c.Services {
		s := &c.Services[i]
		a := s.Analysis
		s.Rolling.Judge = RollJudge{}
		if c.Prometheus.Address == "" || rollQueryProblem(a.Requests, DefaultRequestsQuery) != "" || rollQueryProblem(a.Errors, DefaultErrorsQuery) != "" {
			continue
		}
		s.Rolling.Judge = RollJudge{Metrics: true, UnavailableBudget: a.UnavailableBudget, OnUnavailable: a.OnUnavailable}
	}
}

// rollQueryProblem says why query tmpl cannot judge a roll's new hosts
// against its old ones, or "" when it can. During a roll both sit in the
// old colour's cluster and all traffic goes there, so a query must select
// hosts by colour ({{.Color}} on a label the hosts carry themselves, such
// as the app's counters labelled by colour, or per-instance series
// relabelled with it), not by cluster ({{.Cluster}}, envoy_cluster_name).
// A template that does not parse has its own error; it gives "".
func rollQueryProblem(tmpl, def string) string {
	if strings.TrimSpace(tmpl) == strings.TrimSpace(def) {
		return "the default reads Envoy's per-cluster stats"
	}
	t, err := template.New("query").Option("missingkey=error").Parse(tmpl)
	if err != nil {
		return ""
	}
	render := func(color, cluster string) (string, bool) {
		var b strings.Builder
		d := prometheus.TemplateData{Service: "svc", Color: color, Cluster: cluster}
		if err := t.Execute(&b, d); err != nil {
			return "", false
		}
		return b.String(), true
	}
	// Real colours, for templates that branch on them; each probe varies
	// one field.
	base, ok1 := render("blue", "svc-blue")
	byColour, ok2 := render("green", "svc-blue")
	byCluster, ok3 := render("blue", "svc-green")
	switch {
	case !ok1 || !ok2 || !ok3:
		return ""
	case base != byCluster:
		return "it selects by {{.Cluster}}"
	case strings.Contains(base, "envoy_cluster_name"):
		return "it reads Envoy's per-cluster stats (envoy_cluster_name)"
	case base == byColour:
		return "it does not select by {{.Color}}, so it reads the same series for both colours"
	}
	return ""
}

// validateRollQueries: a rolling service judged on Prometheus needs queries
// that tell its new hosts from its old ones.
func validateRollQueries(s Service, at string, es *Errors) {
	for _, q := range []struct{ key, tmpl, def string }{
		{"requests", s.Analysis.Requests, DefaultRequestsQuery},
		{"errors", s.Analysis.Errors, DefaultErrorsQuery},
	} {
		why := rollQueryProblem(q.tmpl, q.def)
		if why == "" {
			continue
		}
		es.add(at+".analysis."+q.key, "%s. With strategy rolling and prometheus.address set, this query judges each roll's new hosts "+
			"against its old ones, but during a roll the old colour's cluster (%s or %s) carries both old and new hosts, "+
			"so per-cluster stats cannot tell them apart: select hosts by a label they carry themselves, with {{.Color}} "+
			`(e.g. your app's counters labelled color="{{.Color}}", or per-instance series labelled by colour)`,
			why, model.ClusterName(s.Name, model.Blue), model.ClusterName(s.Name, model.Green))
	}
	if s.Analysis.UnavailableBudget < s.Rolling.Interval {
		es.add(at+".analysis.unavailable_budget", "%s: must be at least rolling.interval (%s): a roll applies on_unavailable after this long without metrics",
			s.Analysis.UnavailableBudget, s.Rolling.Interval)
	}
}
