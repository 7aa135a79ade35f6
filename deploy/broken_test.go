package deploy

import (
	"strings"
	"testing"
)

// TestBrokenFilesFail breaks each file the way a careless edit would and
// checks that the checks above catch it, so none of them passes vacuously.
// Each edit must apply to the file as shipped (it names text that is
// there), and must produce a problem naming what it broke.
func TestBrokenFilesFail(t *testing.T) {
	cases := []struct {
		file, old, new string
		want           string // a substring of one reported problem
	}{
		// bg.nomad.hcl
		{bgJobFile, `job "bg" {`, `job "bg" {{`, "bg.nomad.hcl:"},
		{bgJobFile, "count = 3", "count = 2", "want 3 replicas"},
		{bgJobFile, `operator = "distinct_hosts"`, `operator = "distinct_property"`, "no distinct_hosts"},
		{bgJobFile, "max_parallel      = 1", "max_parallel      = 3", "max_parallel = 3"},
		{bgJobFile, "canary            = 0", "canary            = 1", "canary = 1"},
		{bgJobFile, `args         = ["serve",`, `args         = ["server",`, "want bg serve"},
		{bgJobFile, `"--config", "${NOMAD_TASK_DIR}/bg.yaml"`, `"--conf", "${NOMAD_TASK_DIR}/bg.yaml"`, "not a flag of bg serve"},
		{bgJobFile, `"--config", "${NOMAD_TASK_DIR}/bg.yaml"`, `"--config", "${NOMAD_TASK_DIR}/bg.yml"`, "no template writes it"},
		{bgJobFile, `kill_signal  = "SIGTERM"`, `kill_signal  = "SIGINT"`, "kill_signal"},
		{bgJobFile, `kill_timeout = "30s"`, `kill_timeout = "5s"`, "kill_timeout"},
		{bgJobFile, `kill_timeout = "30s"`, `kill_timeout = "2m"`, "kill_timeout"},
		{bgJobFile, "kv_prefix: bg/", "kv_prefix: /bg/", "consul.kv_prefix"},
		{bgJobFile, "scope: read, sha256", "scope: reader, sha256", "admin.tokens[0].scope"},
		{bgJobFile, "cert_file: /secrets/admin.pem", "cert_file: /secrets/admin-cert.pem", "no template writes"},
		{bgJobFile, "BG_XDS_LISTEN     =", "BG_XDS_LISTN      =", "no config key binds it"},
		{bgJobFile, "BG_ADMIN_LISTEN   =", "ADMIN_LISTEN      =", "bg reads only BG_*"},
		{bgJobFile, `BG_XDS_LISTEN     = "${NOMAD_ADDR_xds}"`, `BG_XDS_LISTEN     = "${NOMAD_ADDR_admin}"`, "xds.listen"},
		{bgJobFile, `port "xds" {
        static = 18000`, `port "xds" {
        to = 18000`, `port "xds" is not static`},
		{bgJobFile, `name     = "bg-xds"`, `name     = "bg-control-plane"`, "leader election"},
		{bgJobFile, `type     = "tcp"`, `type     = "grpc"`, "grpc.health.v1"},
		{bgJobFile, `path            = "/readyz"`, `path            = "/ready"`, "no check on /readyz"},
		{bgJobFile, `Authorization = ["Bearer ${var.health_token}"]`, `Authorization = ["Bearer ${var.image}"]`, "answers 401"},
		{bgJobFile, `protocol        = "https"`, `protocol        = "http"`, "served over https"},
		{bgJobFile, `check_restart {`, `check_restart_ {`, "no check_restart"},
		{bgJobFile, "uid         = 65532", "uid         = 1000", "cannot read it"},
		{bgJobFile, "require_client_cert: true", "require_client_cert: maybe", "xds.tls.require_client_cert"},

		// service-bluegreen.nomad.hcl
		{exampleJobFile, `group "green" {`, `group "greenish" {`, "want exactly blue and green"},
		{exampleJobFile, `tags = ["green"]`, `tags = ["gren"]`, "tagged neither"},
		{exampleJobFile, `tags = ["blue"]`, `tags = ["blue", "green"]`, "tagged both"},
		{exampleJobFile, "version = var.green_version", "ver = var.green_version", `version ""`},
		{exampleJobFile, `name     = "web"`, `name     = "webapp"`, "no service's consul_service"},
		{exampleJobFile, `check {
        name     = "http"`, `checks {
        name     = "http"`, "no check"},

		// bg.service
		{unitFile, "Type=exec", "Type=notify", "Type="},
		{unitFile, "ExecStart=/usr/local/bin/bg serve --config", "ExecStart=/usr/local/bin/bg serve --conf", "not a flag of bg serve"},
		{unitFile, "ExecReload=/bin/kill -HUP $MAINPID", "ExecReload=/bin/kill -USR1 $MAINPID", "ExecReload"},
		{unitFile, "Restart=on-failure", "Restart=always", "Restart="},
		{unitFile, "RestartPreventExitStatus=2", "RestartPreventExitStatus=3", "RestartPreventExitStatus"},
		{unitFile, "User=bg", "User=root", "User="},
		{unitFile, "NoNewPrivileges=yes", "NoNewPrivileges=no", "NoNewPrivileges"},
		{unitFile, "ProtectSystem=strict", "ProtectSystem=full", "ProtectSystem"},
		{unitFile, "ProtectHome=yes", "ProtectHome=no", "ProtectHome"},
		{unitFile, "PrivateTmp=yes", "PrivateTmp=no", "PrivateTmp"},
		{unitFile, "LimitNOFILE=65536", "LimitNOFILE=1024", "LimitNOFILE"},
		{unitFile, "EnvironmentFile=-/etc/bg/bg.env", "EnvironmentFile=/etc/bg/bg.env", "EnvironmentFile"},
		{unitFile, "KillSignal=SIGTERM", "KillSignal=SIGKILL", "KillSignal"},
		{unitFile, "TimeoutStopSec=30s", "TimeoutStopSec=3s", "TimeoutStopSec"},
		// Only systemd-analyze verify knows these are wrong.
		{unitFile, "ProtectProc=invisible", "ProtectProc=bogus", "Failed to parse"},
		{unitFile, "SystemCallArchitectures=native", "SystemCallArchitectures=native sparc-but-not", "systemd-analyze verify says"},
	}
	for _, c := range cases {
		t.Run(c.file+": "+c.new, func(t *testing.T) {
			src := string(readFile(t, c.file))
			if !strings.Contains(src, c.old) {
				t.Fatalf("%q is not in %s: update this case", c.old, c.file)
			}
			broken := []byte(strings.Replace(src, c.old, c.new, 1))
			var p problems
			switch c.file {
			case bgJobFile:
				_, p = checkBGJob(broken, plainDir(t))
			case exampleJobFile:
				cfg, bp := checkBGJob(readFile(t, bgJobFile), plainDir(t))
				fail(t, bgJobFile, bp)
				p = checkExampleJob(broken, cfg)
			case unitFile:
				p = checkUnit(broken)
				if strings.Contains(c.want, "Failed to parse") || strings.Contains(c.want, "systemd-analyze") {
					p = append(p, verifyUnit(t, systemdAnalyze(t), broken)...)
				}
			}
			if len(p) == 0 {
				t.Fatalf("%s with %q instead of %q passes every check", c.file, c.new, c.old)
			}
			for _, s := range p {
				if strings.Contains(s, c.want) {
					t.Logf("caught: %s", s)
					return
				}
			}
			t.Errorf("no problem mentions %q; got:\n%s", c.want, strings.Join(p, "\n"))
		})
	}
}
