# bg control plane on Nomad: three `bg serve` replicas, one per host, behind
# bg's own Consul leader lock (docs/leader.md). Every replica serves xDS; the
# one holding the lock at consul.kv_prefix + "leader" acts, the others
# forward admin commands to it.
#
#   nomad var put nomad/jobs/bg \
#     consul_token=@consul.token \
#     ca=@ca.pem admin_cert=@admin.pem admin_key=@admin-key.pem \
#     xds_cert=@xds.pem xds_key=@xds-key.pem \
#     deployer_token=@deployer.token operator_token=@operator.token
#   nomad job run -var image=registry.example.com/bg:v1.2.3 \
#     -var health_token="$(cat health.token)" deploy/nomad/bg.nomad.hcl
#
# deploy/README.md explains every choice; deploy/nomad_test.go parses this
# file and loads the config it ships with bg's own validator.

variable "image" {
  type        = string
  description = "bg image, built from the repository's Dockerfile (docker build -t REGISTRY/bg:VERSION .)"
}

variable "datacenters" {
  type    = list(string)
  default = ["*"]
}

variable "consul_address" {
  type        = string
  description = "the Consul agent's HTTP API as seen from the host (the task uses host networking)"
  default     = "127.0.0.1:8500"
}

variable "health_token" {
  type        = string
  description = "a read-scope admin token for Consul's health checks: Consul sends it as a header, so it is stored in the check definition; give it nothing but read"
}

job "bg" {
  type        = "service"
  datacenters = var.datacenters

  # One replica per host: losing a host costs one replica of three.
  constraint {
    operator = "distinct_hosts"
    value    = "true"
  }

  # Replace one replica at a time, and only once the previous one passes its
  # checks: a control plane is never rolled all at once. No canaries: every
  # replica is equal and there is nothing to route to a canary.
  update {
    max_parallel      = 1
    canary            = 0
    health_check      = "checks"
    min_healthy_time  = "10s"
    healthy_deadline  = "2m"
    progress_deadline = "5m"
    auto_revert       = true
  }

  group "bg" {
    count = 3

    network {
      mode = "host"
      # Static ports: Envoy bootstraps point at bg-xds.service.consul:18000
      # (or at each host), and distinct_hosts keeps them from clashing.
      port "xds" {
        static = 18000
      }
      port "admin" {
        static = 9090
      }
    }

    # Deregister from Consul before the kill signal, so no new xDS client
    # is sent to a replica that is about to stop.
    shutdown_delay = "3s"

    restart {
      attempts = 3
      interval = "5m"
      delay    = "10s"
      mode     = "delay"
    }

    reschedule {
      delay          = "30s"
      delay_function = "exponential"
      max_delay      = "5m"
      unlimited      = true
    }

    # xDS: the ADS gRPC server Envoy and proxyless gRPC clients connect to.
    # bg does not serve grpc.health.v1, so this is a TCP check (a Consul grpc
    # check would always fail).
    service {
      provider = "consul"
      name     = "bg-xds"
      port     = "xds"
      tags     = ["xds", "grpc"]

      check {
        name     = "xds-tcp"
        type     = "tcp"
        interval = "5s"
        timeout  = "2s"
      }
    }

    # The admin API (CLI, forwarding between replicas, /metrics). Its health
    # endpoints need a token once one is configured, hence the header.
    service {
      provider = "consul"
      name     = "bg-admin"
      port     = "admin"
      tags     = ["admin", "metrics"]

      # Liveness: the process answers. Restart it when it stops answering.
      check {
        name            = "healthz"
        type            = "http"
        protocol        = "https"
        path            = "/healthz"
        interval        = "5s"
        timeout         = "2s"
        tls_skip_verify = true

        header {
          Authorization = ["Bearer ${var.health_token}"]
        }

        check_restart {
          limit = 3
          grace = "30s"
        }
      }

      # Readiness: state loaded and every service's fleets read; 503 (with
      # what it waits for) until then. Gates the rolling update.
      check {
        name            = "readyz"
        type            = "http"
        protocol        = "https"
        path            = "/readyz"
        interval        = "5s"
        timeout         = "2s"
        tls_skip_verify = true

        header {
          Authorization = ["Bearer ${var.health_token}"]
        }
      }
    }

    task "bg" {
      driver = "docker"

      config {
        image        = var.image
        network_mode = "host"
        args         = ["serve", "--config", "${NOMAD_TASK_DIR}/bg.yaml"]
      }

      # On SIGTERM the leader releases the lock (no lock delay), destroys its
      # session and deregisters its check: a follower leads one Consul round
      # trip later. bg bounds its own shutdown at 5 s; 30 s leaves room for a
      # slow Consul before Nomad sends SIGKILL (which would cost a crash
      # takeover: leader.check_ttl + leader.lock_delay).
      kill_signal  = "SIGTERM"
      kill_timeout = "30s"

      # Per-host values as BG_* variables (consul.address -> BG_CONSUL_ADDRESS);
      # they override the file.
      env {
        BG_CONSUL_ADDRESS = var.consul_address
        BG_XDS_LISTEN     = "${NOMAD_ADDR_xds}"
        BG_ADMIN_LISTEN   = "${NOMAD_ADDR_admin}"
      }

      # Secrets from Nomad Variables (readable by this job's workload
      # identity at nomad/jobs/bg). The Consul token goes in as an
      # environment variable, never into the file.
      template {
        destination = "secrets/bg.env"
        env         = true
        change_mode = "restart"
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/bg" }}BG_CONSUL_TOKEN={{ .consul_token }}{{ end }}
        EOT
      }

      # Secret files are 0400 and owned by the image's user (the
      # Dockerfile's USER 65532:65532), who alone reads them.
      #
      # Certificates: bg re-reads them when they change, so a rotation needs
      # no restart. The admin certificate must name each host's address (IP
      # SAN): followers forward commands to the leader's admin address and
      # verify it against ca.pem.
      template {
        destination = "secrets/ca.pem"
        change_mode = "noop"
        perms       = "0400"
        uid         = 65532
        gid         = 65532
        data        = "{{ with nomadVar \"nomad/jobs/bg\" }}{{ .ca }}{{ end }}"
      }
      template {
        destination = "secrets/admin.pem"
        change_mode = "noop"
        perms       = "0400"
        uid         = 65532
        gid         = 65532
        data        = "{{ with nomadVar \"nomad/jobs/bg\" }}{{ .admin_cert }}{{ end }}"
      }
      template {
        destination = "secrets/admin-key.pem"
        change_mode = "noop"
        perms       = "0400"
        uid         = 65532
        gid         = 65532
        data        = "{{ with nomadVar \"nomad/jobs/bg\" }}{{ .admin_key }}{{ end }}"
      }
      template {
        destination = "secrets/xds.pem"
        change_mode = "noop"
        perms       = "0400"
        uid         = 65532
        gid         = 65532
        data        = "{{ with nomadVar \"nomad/jobs/bg\" }}{{ .xds_cert }}{{ end }}"
      }
      template {
        destination = "secrets/xds-key.pem"
        change_mode = "noop"
        perms       = "0400"
        uid         = 65532
        gid         = 65532
        data        = "{{ with nomadVar \"nomad/jobs/bg\" }}{{ .xds_key }}{{ end }}"
      }

      # Admin tokens read from files are hashed at start: a new token needs
      # a restart (or SIGHUP once live reload lands).
      template {
        destination = "secrets/deployer.token"
        change_mode = "restart"
        perms       = "0400"
        uid         = 65532
        gid         = 65532
        data        = "{{ with nomadVar \"nomad/jobs/bg\" }}{{ .deployer_token }}{{ end }}"
      }
      template {
        destination = "secrets/operator.token"
        change_mode = "restart"
        perms       = "0400"
        uid         = 65532
        gid         = 65532
        data        = "{{ with nomadVar \"nomad/jobs/bg\" }}{{ .operator_token }}{{ end }}"
      }

      # bg's config (keys: configs/bg.yaml). The delimiters are not {{ }}:
      # bg's own analysis queries are Go templates ({{.Cluster}}) that
      # consul-template must leave alone. ${...} is filled in by Nomad when
      # the job is submitted.
      template {
        destination     = "local/bg.yaml"
        change_mode     = "restart"
        left_delimiter  = "[["
        right_delimiter = "]]"
        data            = <<-EOT
          consul:
            # address: BG_CONSUL_ADDRESS; token: BG_CONSUL_TOKEN (bg.env).
            kv_prefix: bg/
            color:
              blue_tag: blue
              green_tag: green
          xds:
            # listen: BG_XDS_LISTEN (this host's address, port 18000).
            tls:
              cert_file: /secrets/xds.pem
              key_file: /secrets/xds-key.pem
              client_ca_file: /secrets/ca.pem
              require_client_cert: true
              node_id_from: spiffe
          admin:
            # listen: BG_ADMIN_LISTEN (this host's address, port 9090).
            tls:
              cert_file: /secrets/admin.pem
              key_file: /secrets/admin-key.pem
              client_ca_file: /secrets/ca.pem
            tokens:
              # What Consul's checks present (var.health_token).
              - {name: consul-health, scope: read, sha256: "${sha256(var.health_token)}"}
              - {name: deployer, scope: operate, file: /secrets/deployer.token}
              - {name: operator, scope: override, file: /secrets/operator.token}
          leader:
            check_ttl: 2.4s
            session_ttl: 10s
            lock_delay: 100ms
          log:
            level: info
          services:
            # deploy/nomad/service-bluegreen.nomad.hcl registers this one.
            - name: web
              consul_service: web
              port: 10000
              protocol: http1
        EOT
      }

      resources {
        cpu    = 500
        memory = 512
      }
    }
  }
}
