variable "name" {
  type        = string
  description = "Name of the queue, used as the replication group id and as the prefix of every resource name."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,34}[a-z0-9]$", var.name))
    error_message = "The name must be 2 to 36 lowercase letters, digits or hyphens, start with a letter and not end with a hyphen."
  }
}

variable "vpc_id" {
  type        = string
  description = "VPC the queue runs in."
}

variable "subnet_ids" {
  type        = list(string)
  description = "Private subnets in at least two availability zones; nodes are spread across them."

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "Give at least two subnets, in different availability zones, for failover."
  }
}

variable "engine" {
  type        = string
  description = "Queue engine: \"redis\" (ElastiCache) or \"nats\" (a NATS JetStream cluster on EC2)."
  default     = "redis"

  validation {
    condition     = contains(["redis", "nats"], var.engine)
    error_message = "The engine must be \"redis\" or \"nats\"."
  }
}

variable "redis_node_type" {
  type        = string
  description = "ElastiCache node type."
  default     = "cache.t4g.small"

  validation {
    condition     = can(regex("^cache\\.", var.redis_node_type))
    error_message = "The node type must be an ElastiCache node type such as cache.t4g.small."
  }
}

variable "redis_engine_version" {
  type        = string
  description = "Redis engine version."
  default     = "7.1"
}

variable "redis_nodes" {
  type        = number
  description = "Number of Redis nodes: one primary and the rest replicas, spread over the subnets' zones."
  default     = 2

  validation {
    condition     = var.redis_nodes >= 2 && var.redis_nodes <= 6
    error_message = "Automatic failover needs 2 to 6 nodes."
  }
}

variable "snapshot_retention_days" {
  type        = number
  description = "Days to keep daily snapshots (Redis: ElastiCache automatic snapshots, at most 35; NATS: EBS snapshots)."
  default     = 7

  validation {
    condition     = var.snapshot_retention_days >= 7 && var.snapshot_retention_days <= 90 && floor(var.snapshot_retention_days) == var.snapshot_retention_days
    error_message = "Keep snapshots a whole number of days from 7 to 90."
  }
}

variable "snapshot_window" {
  type        = string
  description = "Daily UTC window for snapshots, hh24:mi-hh24:mi."
  default     = "03:00-04:00"

  validation {
    condition     = can(regex("^([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9]$", var.snapshot_window))
    error_message = "The snapshot window must look like 03:00-04:00."
  }
}

variable "maintenance_window" {
  type        = string
  description = "Weekly UTC maintenance window, ddd:hh24:mi-ddd:hh24:mi; must not overlap the snapshot window."
  default     = "sun:05:00-sun:06:00"

  validation {
    condition     = can(regex("^(mon|tue|wed|thu|fri|sat|sun):[0-2][0-9]:[0-5][0-9]-(mon|tue|wed|thu|fri|sat|sun):[0-2][0-9]:[0-5][0-9]$", var.maintenance_window))
    error_message = "The maintenance window must look like sun:05:00-sun:06:00."
  }
}

variable "nats_instance_type" {
  type        = string
  description = "EC2 instance type of each NATS server."
  default     = "t3.small"
}

variable "nats_cluster_size" {
  type        = number
  description = "Number of NATS servers; JetStream needs an odd number for its quorum."
  default     = 3

  validation {
    condition     = contains([3, 5], var.nats_cluster_size)
    error_message = "A JetStream cluster has 3 or 5 servers."
  }
}

variable "nats_volume_size_gb" {
  type        = number
  description = "Size of each NATS server's encrypted JetStream volume, in GiB."
  default     = 20

  validation {
    condition     = var.nats_volume_size_gb >= 8 && var.nats_volume_size_gb <= 16384
    error_message = "The volume must be 8 to 16384 GiB."
  }
}

variable "nats_server_version" {
  type        = string
  description = "nats-server release installed on the NATS servers."
  default     = "2.10.22"

  validation {
    condition     = can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+$", var.nats_server_version))
    error_message = "Give a release version such as 2.10.22."
  }
}

variable "nats_server_sha256" {
  type        = string
  description = "SHA-256 of the nats-server linux-amd64 .tar.gz release archive; the download is refused when it differs. Required when engine is \"nats\"."
  default     = null

  validation {
    condition     = var.nats_server_sha256 == null || can(regex("^[0-9a-f]{64}$", var.nats_server_sha256))
    error_message = "Give the SHA-256 as 64 lowercase hex digits."
  }
}

variable "ami_id" {
  type        = string
  description = "AMI of the NATS servers; null takes the latest Amazon Linux 2023."
  default     = null
}

variable "kms_key_arn" {
  type        = string
  description = "KMS key that encrypts data at rest, the auth token and the logs; null creates one with yearly rotation."
  default     = null
}

variable "alarm_actions" {
  type        = list(string)
  description = "ARNs (for example SNS topics) notified when an alarm fires or recovers."
  default     = []
}

variable "cpu_alarm_percent" {
  type        = number
  description = "CPU utilisation, in percent, above which the CPU alarm fires."
  default     = 75

  validation {
    condition     = var.cpu_alarm_percent > 0 && var.cpu_alarm_percent <= 100
    error_message = "The threshold is a percentage from 1 to 100."
  }
}

variable "memory_alarm_percent" {
  type        = number
  description = "Redis memory use, in percent of the maximum, above which the memory alarm fires."
  default     = 80

  validation {
    condition     = var.memory_alarm_percent > 0 && var.memory_alarm_percent <= 100
    error_message = "The threshold is a percentage from 1 to 100."
  }
}

variable "log_retention_days" {
  type        = number
  description = "Days to keep the queue's CloudWatch logs."
  default     = 365

  validation {
    condition     = contains([30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "Use a CloudWatch Logs retention of 30 days or more (30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653)."
  }
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource."
  default     = {}
}
