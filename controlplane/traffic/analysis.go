package traffic

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/bgctl/bg/controlplane/fleetmetrics"
	"github.com/bgctl/bg/controlplane/judge"
	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/rollout"
)

// SetAnalysis gives the controller its metrics source and each service's
// default plan. Without a source, progressive switches are refused.
func (c *Controller) SetAnalysis(src fleetmetrics.Source, plans map[string]model.Plan) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.source, c.plans = src, plans
}

// counting follows one switch's (or roll's) two fleets from read to read,
// in one leader term: its trackers hold each series' last value, so every
// analysis counts exactly what each fleet served since the previous one.
// A new switch or a new term starts a new one, whose first read only sets
// the starting point.
type counting struct {
	id         string // rollout or roll ID
	epoch      uint64
	cand, base fleetmetrics.Tracker
	// candScraped and baseScraped are the oldest scrape of each fleet's
	// series in the last read that was counted.
	candScraped, baseScraped time.Time
	test                     *judge.Sequential // a roll's error test (a switch keeps its own in its state)
}

// analysisSessions holds each service's counting, off the controller's lock:
// one service's rounds run one at a time (the ticking flag), so the
// mutex only guards the map.
type analysisSessions struct {
	mu sync.Mutex
	m  map[string]*counting
}

// get returns the service's counting for id in epoch, starting a new one
// when the switch or the term changed.
func (a *analysisSessions) get(service, id string, epoch uint64) *counting {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil {
		a.m = map[string]*counting{}
	}
	s := a.m[service]
	if s == nil || s.id != id || s.epoch != epoch {
		s = &counting{id: id, epoch: epoch}
		a.m[service] = s
	}
	return s
}

// primed reports whether a round of id in epoch has already begun to count
// (get was called): if not, the next round should read the starting point
// at once. Only that first read is hurried: when it fails, or is refused
// because Prometheus has not yet scraped the fleets since the switch began,
// the next try comes an interval later like any round, never at once
// again and again (that loop queried Prometheus back to back, e.g. for a
// whole scrape interval, or for as long as Prometheus was down).
func (a *analysisSessions) primed(service, id string, epoch uint64) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.m[service]
	return s != nil && s.id == id && s.epoch == epoch
}

// read reads both fleets at one instant, bounded by the plan's interval;
// scraped asks for the oldest scrape time of what was read.
func (c *Controller) read(ctx context.Context, service string, from, to model.Color, p model.Plan, scraped bool) (cand, base fleetmetrics.Reading, err error) {
	c.mu.Lock()
	src := c.source
	c.mu.Unlock()
	if src == nil {
		return cand, base, fmt.Errorf("%w: prometheus.address is not configured", fleetmetrics.ErrUnavailable)
	}
	ctx, cancel := context.WithTimeout(ctx, max(p.Interval.D(), minQueryTimeout))
	defer cancel()
	at := time.Now() // Prometheus's clock, not the controller's
	if cand, err = src.Read(ctx, fleetmetrics.Query{Service: service, Color: to, At: at, Scraped: scraped}); err != nil {
		return cand, base, err
	}
	base, err = src.Read(ctx, fleetmetrics.Query{Service: service, Color: from, At: at, Scraped: scraped})
	return cand, base, err
}

// minQueryTimeout keeps very short intervals from starving slow queries.
const minQueryTimeout = 2 * time.Second

// counted is one round's exact counts for both fleets.
type counted struct {
	primed     bool
	cand, base fleetmetrics.Counts
	noData     string
}

// count reads both fleets and advances the session's trackers. The
// starting point is only taken from values scraped after since (the switch
// or roll began): a counter read at the start may be a scrape old, and the
// requests of that last stretch belong to what ran before (a failed
// attempt's errors, say). Until every series has a scrape after since, the
// read is not used; what the fleets served meanwhile is not counted.
func (c *Controller) count(ctx context.Context, service string, s *counting, from, to model.Color, p model.Plan, since time.Time) (counted, error) {
	priming := !s.cand.Primed()
	cr, br, err := c.read(ctx, service, from, to, p, true)
	if err != nil {
		return counted{}, err
	}
	if priming && (before(cr.Scraped, since) || before(br.Scraped, since)) {
		return counted{}, nil // scraped before the switch began: not a start
	}
	if !priming && (!scrapedSince(cr.Scraped, s.candScraped) || !scrapedSince(br.Scraped, s.baseScraped)) &&
		c.now().Sub(oldest(s.candScraped, s.baseScraped)) < 2*p.Interval.D() {
		// A fleet was not scraped since the last read (Prometheus scrapes
		// less often than the interval): its flat counters say nothing
		// about its traffic. Wait for the next scrape; after two intervals without
		// one, the counts are taken as they are, and a fleet without
		// requests is insufficient data, so the budget runs.
		return counted{}, nil
	}
	s.candScraped, s.baseScraped = cr.Scraped, br.Scraped
	var out counted
	var ok1, ok2 bool
	out.cand, ok1 = s.cand.Advance(cr)
	out.base, ok2 = s.base.Advance(br)
	out.primed = ok1 && ok2
	switch {
	case !out.primed:
	case out.base.Series == 0:
		out.noData = fmt.Sprintf("baseline %s has no request series (no traffic, or its metrics went away)", from)
	case out.cand.Series == 0:
		out.noData = fmt.Sprintf("candidate %s has no request series (no traffic, or its metrics went away)", to)
	case out.base.Requests == 0:
		out.noData = fmt.Sprintf("baseline %s served no requests since the last analysis", from)
	case out.cand.Requests == 0:
		out.noData = fmt.Sprintf("candidate %s served no requests since the last analysis", to)
	case p.Latency != nil && (len(out.cand.Latency) == 0 || len(out.base.Latency) == 0):
		out.noData = "no latency histogram series for one of the fleets"
	}
	return out, nil
}

// analyse runs one interval's analysis of a running switch: both fleets
// read at one instant, counted exactly since the previous analysis.
func (c *Controller) analyse(ctx context.Context, service string, epoch uint64, r *model.Rollout) rollout.Analysis {
	now := c.now()
	s := c.counts.get(service, r.ID, epoch)
	got, err := c.count(ctx, service, s, r.From, r.To, r.Plan, r.StartedAt)
	if err != nil {
		return rollout.Analysis{Now: now, Unavailable: err.Error()}
	}
	a := rollout.Analysis{Now: now, Primed: got.primed, NoData: got.noData,
		Candidate: sample(got.cand), Baseline: sample(got.base)}
	if r.Plan.Latency != nil && got.noData == "" {
		a.CandidateLatency, a.BaselineLatency = histogram(got.cand.Latency), histogram(got.base.Latency)
		if a.Primed && (a.CandidateLatency == nil || a.BaselineLatency == nil) {
			a.NoData = "a latency histogram has no +Inf bucket"
		}
	}
	return a
}

// before: t is known and earlier than since.
func before(t, since time.Time) bool { return !t.IsZero() && t.Before(since) }

// scrapedSince: a scrape newer than last, or times unknown (a source that
// does not report them).
func scrapedSince(t, last time.Time) bool { return t.IsZero() || last.IsZero() || t.After(last) }

func oldest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func sample(c fleetmetrics.Counts) judge.Sample {
	return judge.Sample{Requests: c.Requests, Errors: c.Errors}
}

// histogram turns summed bucket increments into the judge's histogram.
func histogram(bs []fleetmetrics.Bucket) *judge.Histogram {
	if len(bs) == 0 {
		return nil
	}
	h := &judge.Histogram{}
	for _, b := range bs {
		h.Bounds = append(h.Bounds, b.Le)
		h.Counts = append(h.Counts, b.Count)
	}
	if !math.IsInf(h.Bounds[len(h.Bounds)-1], 1) {
		return nil // no +Inf bucket: the judge would refuse it
	}
	return h
}

// recordAnalysis exports what the switch's analysis decided.
func (c *Controller) recordAnalysis(service string, after *model.Rollout) {
	if after == nil || len(after.Verdicts) == 0 {
		return
	}
	c.m.analyses.WithLabelValues(service, after.Verdicts[len(after.Verdicts)-1].Outcome).Inc()
	c.m.setEvidence(service, after)
}
