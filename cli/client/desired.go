package client

import (
	"context"
	"net/http"
	"net/url"

	apiv1 "github.com/bgctl/bg/controlplane/api/v1"
)

func desiredPath(service string) string {
	return "/v1/services/" + url.PathEscape(service) + "/desired"
}

// Desire stores the version a service should run (or, with Retry, clears
// its failure).
func (c *Client) Desire(ctx context.Context, service string, req apiv1.DesireRequest) (apiv1.DesireResult, error) {
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	var res apiv1.DesireResult
	_, err := c.do(ctx, http.MethodPost, desiredPath(service), req, &res)
	return res, err
}

// Desired reads a service's desired version and convergence.
func (c *Client) Desired(ctx context.Context, service string) (apiv1.Convergence, error) {
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	var res apiv1.Convergence
	_, err := c.do(ctx, http.MethodGet, desiredPath(service), nil, &res)
	return res, err
}

// DesireSet stores several services' desired versions as one group.
func (c *Client) DesireSet(ctx context.Context, req apiv1.DesireSetRequest) (apiv1.DesireSetResult, error) {
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	var res apiv1.DesireSetResult
	_, err := c.do(ctx, http.MethodPost, "/v1/desired", req, &res)
	return res, err
}
