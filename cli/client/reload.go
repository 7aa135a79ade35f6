package client

import (
	"context"
	"net/http"

	apiv1 "github.com/bgctl/bg/controlplane/api/v1"
)

// Reload asks the control plane at Addr to re-read its config file. The
// answer is returned for a refused or invalid file too (with err nil):
// its Result and Error say why the running config stays.
func (c *Client) Reload(ctx context.Context) (apiv1.ReloadAttempt, error) {
	var out apiv1.ReloadAttempt
	_, err := c.do(ctx, http.MethodPost, "/v1/reload", nil, &out, http.StatusConflict, http.StatusUnprocessableEntity)
	return out, err
}
