package client

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	apiv1 "github.com/bgctl/bg/controlplane/api/v1"
)

// releaseTimeout bounds a release command: the control plane stores the
// release's decision and answers; it does not wait for the members.
const releaseTimeout = time.Minute

// StartRelease starts a release (POST /v1/releases; 201 on success).
func (c *Client) StartRelease(ctx context.Context, req apiv1.ReleaseRequest) (apiv1.ReleaseStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, releaseTimeout)
	defer cancel()
	var st apiv1.ReleaseStatus
	_, err := c.do(ctx, http.MethodPost, "/v1/releases", req, &st)
	return st, err
}

// Releases lists every release the control plane keeps, newest first.
func (c *Client) Releases(ctx context.Context) ([]apiv1.ReleaseStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	var list []apiv1.ReleaseStatus
	_, err := c.do(ctx, http.MethodGet, "/v1/releases", nil, &list)
	return list, err
}

// Release returns one release by ID.
func (c *Client) Release(ctx context.Context, id string) (apiv1.ReleaseStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	var st apiv1.ReleaseStatus
	_, err := c.do(ctx, http.MethodGet, releasePath(id), nil, &st)
	return st, err
}

// AbortRelease stops a release: running member switches are aborted and
// promoted members rolled back, consumers before providers.
func (c *Client) AbortRelease(ctx context.Context, id string, cmd apiv1.ReleaseCommand) (apiv1.ReleaseStatus, error) {
	return c.releaseCommand(ctx, id, "abort", cmd)
}

// PauseRelease stops a release from starting members; running member
// switches go on.
func (c *Client) PauseRelease(ctx context.Context, id string, cmd apiv1.ReleaseCommand) (apiv1.ReleaseStatus, error) {
	return c.releaseCommand(ctx, id, "pause", cmd)
}

// ResumeRelease lets a paused release start members again.
func (c *Client) ResumeRelease(ctx context.Context, id string, cmd apiv1.ReleaseCommand) (apiv1.ReleaseStatus, error) {
	return c.releaseCommand(ctx, id, "resume", cmd)
}

func (c *Client) releaseCommand(ctx context.Context, id, op string, cmd apiv1.ReleaseCommand) (apiv1.ReleaseStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, releaseTimeout)
	defer cancel()
	var st apiv1.ReleaseStatus
	_, err := c.do(ctx, http.MethodPost, releasePath(id)+"/"+op, cmd, &st)
	return st, err
}

func releasePath(id string) string { return "/v1/releases/" + url.PathEscape(id) }

// IsNotFound reports an answer that the thing asked for does not exist.
func IsNotFound(err error) bool {
	var e *APIError
	return errors.As(err, &e) && e.StatusCode == http.StatusNotFound
}
