// Package gate calls a switch's webhooks (smoke tests, approvals): a 2xx
// answer within the gate's timeout passes, anything else fails.
package gate

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/bgctl/bg/controlplane/model"
)

// Payload is the JSON body POSTed to a gate.
type Payload struct {
	Service    string      `json:"service"`
	Switch     string      `json:"switch"`
	Stage      string      `json:"stage"`
	From       model.Color `json:"from"`
	To         model.Color `json:"to"`
	Step       int         `json:"step"` // 1-based, as shown in status
	Steps      int         `json:"steps"`
	Percent    int         `json:"percent"` // the candidate's share now
	Generation uint64      `json:"generation"`
}

// maxDetail bounds how much of an answer is kept in state and history.
const maxDetail = 200

// Caller posts payloads to gates.
type Caller struct {
	Client *http.Client // nil: a client without its own timeout (each call has one)
}

// Call runs one gate and reports its result (Attempts and At are the caller's).
func (c Caller) Call(ctx context.Context, g model.Gate, p Payload) model.GateResult {
	res := model.GateResult{Gate: g.Name, Stage: p.Stage, Step: p.Step - 1}
	body, err := json.Marshal(p)
	if err != nil {
		res.Detail = err.Error()
		return res
	}
	ctx, cancel := context.WithTimeout(ctx, g.Timeout.D())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.URL, bytes.NewReader(body))
	if err != nil {
		res.Detail = err.Error()
		return res
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "bg-gate")
	client := c.Client
	if client == nil {
		client = http.DefaultClient
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			res.Detail = fmt.Sprintf("no answer within %s", g.Timeout.D())
		} else {
			res.Detail = err.Error()
		}
		return res
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(io.LimitReader(resp.Body, 4*maxDetail))
	res.Status = resp.StatusCode
	res.Passed = resp.StatusCode >= 200 && resp.StatusCode < 300
	res.Detail = clip(strings.TrimSpace(string(text)))
	if res.Passed && res.Detail == "" {
		res.Detail = "answered in " + time.Since(start).Round(time.Millisecond).String()
	}
	return res
}

// clip keeps the first maxDetail bytes on a rune boundary.
func clip(s string) string {
	if len(s) <= maxDetail {
		return s
	}
	s = s[:maxDetail]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}
