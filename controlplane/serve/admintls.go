package serve

import (
	"log/slog"

	"github.com/bgctl/bg/controlplane/admin"
	"github.com/bgctl/bg/controlplane/config"
)

// adminSec is the admin API's credentials (hashes only) and TLS.
type adminSec struct {
	creds []config.AdminCredential
	tls   admin.TLSConfigs
}

// adminSecurity hashes admin.token and admin.tokens (reading token files)
// and loads admin.tls. Only hashes leave here; the log names tokens and
// scopes, never a token or its hash.
func adminSecurity(a config.Admin, log *slog.Logger) (adminSec, error) {
	creds, err := a.Credentials()
	if err != nil {
		return adminSec{}, err
	}
	var sec adminSec
	sec.creds = creds
	if a.TLS.Enabled() {
		if sec.tls, err = admin.NewTLS(a.TLS, log); err != nil {
			return adminSec{}, err
		}
	}
	names := make([]string, len(creds))
	for i, c := range creds {
		names[i] = c.Name + ":" + string(c.Scope)
	}
	log.Info("admin API security", "tls", a.TLS.Enabled(), "client_ca", a.TLS.ClientCAFile != "", "tokens", names)
	return sec, nil
}
