// Package client talks to bg's admin API for the CLI and for tests.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	apiv1 "github.com/bgctl/bg/controlplane/api/v1"
)

// Client calls one bg control plane.
type Client struct {
	Addr  string // host:port or http(s) URL
	Token string
	HTTP  *http.Client
	// Actor is sent as X-BG-Actor so the history can say who moved
	// traffic; empty means cli:$USER@$HOSTNAME.
	Actor string
	// TLS, for an https:// Addr (unused when HTTP is set).
	TLS TLSFiles

	once    sync.Once
	hc      *http.Client
	onceErr error
}

// APIError is a non-2xx answer with bg's error body.
type APIError struct {
	StatusCode int
	Body       apiv1.ErrorBody
}

func (e *APIError) Error() string {
	if e.Body.Error != "" {
		return e.Body.Error
	}
	return fmt.Sprintf("control plane answered HTTP %d", e.StatusCode)
}

// UnreachableError means no HTTP answer came back at all.
type UnreachableError struct {
	Addr string
	Err  error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach the bg control plane at %s: %v", e.Addr, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// do sends a request and decodes a JSON answer into out. okCodes lists the
// statuses whose body is a result rather than an error.
func (c *Client) do(ctx context.Context, method, path string, in, out any, okCodes ...int) (int, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, err
		}
		body = bytes.NewReader(b)
	}
	base, err := c.base()
	if err != nil {
		return 0, &ConfigError{Err: err}
	}
	hc, err := c.httpClient()
	if err != nil {
		return 0, &ConfigError{Err: err}
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, body)
	if err != nil {
		return 0, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	actor := c.Actor
	if actor == "" {
		actor = defaultActor()
	}
	req.Header.Set(apiv1.ActorHeader, printableASCII(actor))
	resp, err := hc.Do(req)
	if err != nil {
		return 0, &UnreachableError{Addr: c.Addr, Err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return resp.StatusCode, &UnreachableError{Addr: c.Addr, Err: err}
	}
	ok := resp.StatusCode/100 == 2
	for _, code := range okCodes {
		ok = ok || resp.StatusCode == code
	}
	if !ok {
		e := &APIError{StatusCode: resp.StatusCode}
		_ = json.Unmarshal(raw, &e.Body)
		return resp.StatusCode, e
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decode answer from %s: %w", path, err)
		}
	}
	return resp.StatusCode, nil
}

// readTimeout bounds status reads, so a hung control plane cannot hang a pipeline.
const readTimeout = 30 * time.Second

// Status returns one service.
func (c *Client) Status(ctx context.Context, service string) (apiv1.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	var st apiv1.Status
	_, err := c.do(ctx, http.MethodGet, "/v1/services/"+url.PathEscape(service), nil, &st)
	return st, err
}

// StatusInto decodes one service's status into out, a type that may carry
// fields apiv1.Status does not have (yet), such as the aggregated acks.
func (c *Client) StatusInto(ctx context.Context, service string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	_, err := c.do(ctx, http.MethodGet, "/v1/services/"+url.PathEscape(service), nil, out)
	return err
}

// StatusAll returns every service.
func (c *Client) StatusAll(ctx context.Context) ([]apiv1.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	var st []apiv1.Status
	_, err := c.do(ctx, http.MethodGet, "/v1/services", nil, &st)
	return st, err
}

// Switch moves traffic; the result's Acks say whether every proxy holds it.
func (c *Client) Switch(ctx context.Context, service string, req apiv1.ChangeRequest) (apiv1.Result, error) {
	return c.change(ctx, service, "switch", req)
}

// Abort puts traffic back on the stable colour.
func (c *Client) Abort(ctx context.Context, service string, req apiv1.ChangeRequest) (apiv1.Result, error) {
	return c.change(ctx, service, "abort", req)
}

// Pause, Resume and Promote drive a running progressive switch.
func (c *Client) Pause(ctx context.Context, service string, req apiv1.ChangeRequest) (apiv1.Result, error) {
	return c.change(ctx, service, "pause", req)
}

func (c *Client) Resume(ctx context.Context, service string, req apiv1.ChangeRequest) (apiv1.Result, error) {
	return c.change(ctx, service, "resume", req)
}

func (c *Client) Promote(ctx context.Context, service string, req apiv1.ChangeRequest) (apiv1.Result, error) {
	return c.change(ctx, service, "promote", req)
}

// DryRun shows a switch's plan and runs each query once.
func (c *Client) DryRun(ctx context.Context, service string, req apiv1.ChangeRequest) (apiv1.DryRunReport, error) {
	req.DryRun = true
	var rep apiv1.DryRunReport
	_, err := c.do(ctx, http.MethodPost, "/v1/services/"+url.PathEscape(service)+"/switch", req, &rep)
	return rep, err
}

// Preview turns a service's canary pools and mirroring on or off.
func (c *Client) Preview(ctx context.Context, service string, req apiv1.PreviewRequest) (apiv1.Result, error) {
	var res apiv1.Result
	_, err := c.do(ctx, http.MethodPost, "/v1/services/"+url.PathEscape(service)+"/preview", req, &res, http.StatusGatewayTimeout)
	return res, err
}

func (c *Client) change(ctx context.Context, service, op string, req apiv1.ChangeRequest) (apiv1.Result, error) {
	var res apiv1.Result
	_, err := c.do(ctx, http.MethodPost, "/v1/services/"+url.PathEscape(service)+"/"+op, req, &res, http.StatusGatewayTimeout)
	return res, err
}

// IsUnauthorized reports a missing or wrong token.
func IsUnauthorized(err error) bool {
	var e *APIError
	return errors.As(err, &e) && e.StatusCode == http.StatusUnauthorized
}
