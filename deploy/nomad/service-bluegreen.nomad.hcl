# An example service under bg: two full fleets of "web", one task group per
# colour, both registered in Consul as service "web". bg tells them apart by
# tag (consul.color.blue_tag / green_tag, "blue" and "green" by default) and
# shows meta "version" in `bg status`. Only passing instances are served.
#
# Deploy a new version to the idle colour, then switch:
#   nomad job run -var green_image=registry.example.com/web:v2 \
#     -var green_version=v2 deploy/nomad/service-bluegreen.nomad.hcl
#   bg switch web --to green --wait
#
# Changing one group's variables changes only that group: Nomad leaves the
# other colour's allocations, which carry the traffic, untouched.

variable "datacenters" {
  type    = list(string)
  default = ["*"]
}

variable "count" {
  type    = number
  default = 3
}

variable "blue_image" {
  type = string
}

variable "blue_version" {
  type = string
}

variable "green_image" {
  type = string
}

variable "green_version" {
  type = string
}

job "web" {
  type        = "service"
  datacenters = var.datacenters

  update {
    max_parallel     = 1
    health_check     = "checks"
    min_healthy_time = "10s"
    healthy_deadline = "3m"
    auto_revert      = true
  }

  group "blue" {
    count = var.count

    # Leave Consul (and so bg's fleet) before the task is stopped.
    shutdown_delay = "5s"

    network {
      port "http" {
        to = 8080
      }
    }

    service {
      provider = "consul"
      name     = "web"
      port     = "http"
      # The colour tag is what bg reads; keep it exactly "blue".
      tags = ["blue"]
      meta {
        version = var.blue_version
      }

      check {
        name     = "http"
        type     = "http"
        path     = "/healthz"
        interval = "5s"
        timeout  = "2s"
      }
    }

    task "web" {
      driver = "docker"

      config {
        image = var.blue_image
        ports = ["http"]
      }

      # Envoy drains the endpoint once it leaves Consul; give in-flight
      # requests time to finish.
      kill_timeout = "20s"

      resources {
        cpu    = 200
        memory = 128
      }
    }
  }

  group "green" {
    count = var.count

    shutdown_delay = "5s"

    network {
      port "http" {
        to = 8080
      }
    }

    service {
      provider = "consul"
      name     = "web"
      port     = "http"
      # The colour tag is what bg reads; keep it exactly "green".
      tags = ["green"]
      meta {
        version = var.green_version
      }

      check {
        name     = "http"
        type     = "http"
        path     = "/healthz"
        interval = "5s"
        timeout  = "2s"
      }
    }

    task "web" {
      driver = "docker"

      config {
        image = var.green_image
        ports = ["http"]
      }

      kill_timeout = "20s"

      resources {
        cpu    = 200
        memory = 128
      }
    }
  }
}
