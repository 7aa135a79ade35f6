package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/traffic"
)

// ChangeRequest is the body of a switch, an abort, pause, resume or promote.
type ChangeRequest struct {
	To      string `json:"to,omitempty"` // switch only: "blue" or "green"
	Force   bool   `json:"force,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Timeout string `json:"timeout,omitempty"` // Go duration; default from config

	// Switch only.
	Instant  bool   `json:"instant,omitempty"`
	DryRun   bool   `json:"dry_run,omitempty"`
	Steps    []int  `json:"steps,omitempty"`
	Bake     string `json:"bake,omitempty"`
	Interval string `json:"interval,omitempty"`
	Window   string `json:"window,omitempty"`
}

// hasPlan is true when any switch-only field is set.
func (r ChangeRequest) hasPlan() bool {
	return r.Instant || r.DryRun || r.Steps != nil || r.Bake != "" || r.Interval != "" || r.Window != ""
}

// planOverrides parses the plan fields; the plan itself is validated by the controller.
func planOverrides(r ChangeRequest) (traffic.PlanOverrides, error) {
	o := traffic.PlanOverrides{Steps: r.Steps}
	for _, f := range []struct {
		name, value string
		dst         **time.Duration
	}{{"bake", r.Bake, &o.Bake}, {"interval", r.Interval, &o.Interval}, {"window", r.Window, &o.Window}} {
		if f.value == "" {
			continue
		}
		d, err := time.ParseDuration(f.value)
		if err != nil || d < 0 || d > 24*time.Hour {
			return o, fmt.Errorf("%s: %q is not a duration between 0 and 24h", f.name, f.value)
		}
		*f.dst = &d
	}
	return o, nil
}

// ErrorBody is every error response.
type ErrorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

const maxBody = 64 << 10

// decodeChange parses a request body strictly: unknown fields, bad colours
// and bad durations are errors, never defaults.
func decodeChange(r io.Reader, isSwitch bool) (ChangeRequest, model.Color, time.Duration, error) {
	var req ChangeRequest
	if err := decodeStrict(r, &req); err != nil {
		return req, "", 0, err
	}
	var to model.Color
	switch {
	case isSwitch:
		c, err := model.ParseColor(req.To)
		if err != nil {
			return req, "", 0, fmt.Errorf("to: %w", err)
		}
		to = c
	case req.To != "":
		return req, "", 0, errors.New("to: not allowed except on switch")
	case req.hasPlan():
		return req, "", 0, errors.New("instant, dry_run, steps, bake, interval, window: not allowed except on switch")
	}
	if req.Force && strings.TrimSpace(req.Reason) == "" {
		return req, "", 0, errors.New("force: needs a reason (an override is recorded with why)")
	}
	var timeout time.Duration
	if req.Timeout != "" {
		d, err := time.ParseDuration(req.Timeout)
		if err != nil || d <= 0 || d > time.Hour {
			return req, "", 0, fmt.Errorf("timeout: %q is not a duration between 0 and 1h", req.Timeout)
		}
		timeout = d
	}
	return req, to, timeout, nil
}

// decodeStrict decodes one JSON object (an empty body leaves v as it is);
// unknown fields and trailing data are errors.
func decodeStrict(r io.Reader, v any) error {
	body, err := io.ReadAll(io.LimitReader(r, maxBody+1))
	if err != nil {
		return err
	}
	if len(body) > maxBody {
		return errors.New("request body too large")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("invalid JSON body: %w", err)
	}
	// dec.More() misses a stray '}' or ']', so check the raw remainder.
	if len(bytes.TrimSpace(body[dec.InputOffset():])) > 0 {
		return errors.New("invalid JSON body: trailing data")
	}
	return nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, kind, msg string) {
	writeJSON(w, code, ErrorBody{Error: msg, Code: kind})
}
