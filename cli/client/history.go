package client

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/bgctl/bg/controlplane/model"
)

// History returns a service's newest limit history entries, oldest first;
// limit <= 0 leaves the number to the control plane (apiv1.DefaultHistoryLimit).
func (c *Client) History(ctx context.Context, service string, limit int) ([]model.HistoryEntry, error) {
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	path := "/v1/services/" + url.PathEscape(service) + "/history"
	if limit > 0 {
		path += "?limit=" + strconv.Itoa(limit)
	}
	var entries []model.HistoryEntry
	_, err := c.do(ctx, http.MethodGet, path, nil, &entries)
	return entries, err
}

// defaultActor is who runs this process, computed once: "cli:USER@HOST".
var defaultActor = sync.OnceValue(func() string {
	user := os.Getenv("USER")
	if user == "" {
		user = os.Getenv("USERNAME") // Windows
	}
	if user == "" {
		user = "unknown"
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	return "cli:" + user + "@" + host
})

// printableASCII replaces what Go's HTTP client would refuse in a header
// (a stray control character in $USER must not break every command).
func printableASCII(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, s)
}
