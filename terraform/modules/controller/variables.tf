variable "name" {
  type        = string
  description = "Name of the controller, used as the controller name in its certificate and as the prefix of every resource name."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,30}[a-z0-9]$", var.name))
    error_message = "The name must be 2 to 32 lowercase letters, digits or hyphens, start with a letter and not end with a hyphen."
  }
}

variable "vpc_id" {
  type        = string
  description = "VPC the controller runs in."
}

variable "subnet_id" {
  type        = string
  description = "Subnet of the controller: a public subnet when agents reach it over the internet (with public_ip), else a private one."
}

variable "allowed_cidrs" {
  type        = list(string)
  description = "IPv4 ranges allowed to reach the controller's gRPC port: the clinics' public addresses and the MSP's offices or VPN. Nothing else is let in."

  validation {
    condition     = length(var.allowed_cidrs) > 0 && alltrue([for c in var.allowed_cidrs : can(cidrnetmask(c))])
    error_message = "Give at least one IPv4 range in CIDR notation, such as 203.0.113.10/32."
  }
}

variable "trust_domain" {
  type        = string
  description = "Trust domain of the installation (ward-controller init --trust-domain), such as ward.example-msp.com."

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$", var.trust_domain))
    error_message = "The trust domain is a lowercase DNS-like name."
  }
}

variable "dns_names" {
  type        = list(string)
  description = "DNS names agents and operators use to reach the controller; added to its serving certificate (ward-controller init --dns)."
  default     = []

  validation {
    condition     = alltrue([for n in var.dns_names : can(regex("^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$", n))])
    error_message = "Each DNS name is lowercase letters, digits, dots and hyphens."
  }
}

variable "package_s3_uri" {
  type        = string
  description = "S3 URI of the ward-controller .rpm built by `make package` (for example s3://msp-artifacts/ward/ward-controller-1.0.0.x86_64.rpm); installed at boot."

  validation {
    condition     = can(regex("^s3://[a-z0-9.-]+/.+\\.rpm$", var.package_s3_uri))
    error_message = "Give an s3://bucket/key.rpm URI."
  }
}

variable "port" {
  type        = number
  description = "TCP port of the controller's gRPC API (agents and wardctl)."
  default     = 7443

  validation {
    condition     = var.port >= 1024 && var.port <= 65535
    error_message = "Use an unprivileged port, 1024 to 65535: the controller runs without capabilities."
  }
}

variable "heartbeat_interval" {
  type        = string
  description = "Interval agents send heartbeats at (ward-controller serve --heartbeat-interval)."
  default     = "30s"

  validation {
    condition     = can(regex("^[0-9]+(s|m)$", var.heartbeat_interval))
    error_message = "Give a duration in seconds or minutes, such as 30s."
  }
}

variable "cert_ttl" {
  type        = string
  description = "Lifetime of agent certificates (ward-controller serve --cert-ttl)."
  default     = "24h"

  validation {
    condition     = can(regex("^[0-9]+(m|h)$", var.cert_ttl))
    error_message = "Give a duration in minutes or hours, such as 24h."
  }
}

variable "instance_type" {
  type        = string
  description = "EC2 instance type of the controller."
  default     = "t3.medium"
}

variable "ami_id" {
  type        = string
  description = "AMI of the controller; null takes the latest Amazon Linux 2023."
  default     = null
}

variable "data_volume_size_gb" {
  type        = number
  description = "Size of the encrypted EBS volume holding the controller's data directory, in GiB."
  default     = 50

  validation {
    condition     = var.data_volume_size_gb >= 10 && var.data_volume_size_gb <= 16384
    error_message = "The data volume must be 10 to 16384 GiB."
  }
}

variable "backup_retention_days" {
  type        = number
  description = "Days to keep the daily snapshots of the data volume."
  default     = 35

  validation {
    condition     = var.backup_retention_days >= 7 && var.backup_retention_days <= 3653 && floor(var.backup_retention_days) == var.backup_retention_days
    error_message = "Keep snapshots a whole number of days from 7 to 3653."
  }
}

variable "public_ip" {
  type        = bool
  description = "Give the controller an Elastic IP, for agents that reach it over the internet."
  default     = true
}

variable "additional_security_group_ids" {
  type        = list(string)
  description = "Further security groups for the controller, such as the event queue's client group."
  default     = []
}

variable "readable_secret_arns" {
  type        = list(string)
  description = "Secrets Manager secrets the controller may read, such as the event queue's AUTH token."
  default     = []
}

variable "kms_key_arn" {
  type        = string
  description = "KMS key for the data volume, the PKI backup secret and the logs; null creates one with yearly rotation."
  default     = null
}

variable "log_retention_days" {
  type        = number
  description = "Days to keep the controller's CloudWatch logs."
  default     = 365

  validation {
    condition     = contains([30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "Use a CloudWatch Logs retention of 30 days or more (30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653)."
  }
}

variable "alarm_actions" {
  type        = list(string)
  description = "ARNs (for example SNS topics) notified when an alarm fires or recovers."
  default     = []
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource."
  default     = {}
}
