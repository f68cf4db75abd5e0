# Redis on ElastiCache: one primary and replicas across zones, automatic failover,
# TLS and AUTH, encryption at rest with the KMS key, daily snapshots, logs and alarms.

resource "aws_elasticache_subnet_group" "redis" {
  count = local.redis ? 1 : 0

  name        = var.name
  description = "Ward event queue ${var.name}"
  subnet_ids  = var.subnet_ids
  tags        = local.tags
}

resource "aws_elasticache_replication_group" "redis" {
  count = local.redis ? 1 : 0

  replication_group_id = var.name
  description          = "Ward event queue ${var.name}"
  engine               = "redis"
  engine_version       = var.redis_engine_version
  node_type            = var.redis_node_type
  port                 = local.port
  num_cache_clusters   = var.redis_nodes
  subnet_group_name    = aws_elasticache_subnet_group.redis[0].name
  security_group_ids   = [aws_security_group.queue.id]

  automatic_failover_enabled = true
  multi_az_enabled           = true

  at_rest_encryption_enabled = true
  kms_key_id                 = local.kms_key_arn
  transit_encryption_enabled = true
  auth_token                 = random_password.auth.result

  snapshot_retention_limit  = min(var.snapshot_retention_days, 35)
  snapshot_window           = var.snapshot_window
  maintenance_window        = var.maintenance_window
  final_snapshot_identifier = "${var.name}-final"
  apply_immediately         = false

  log_delivery_configuration {
    destination      = aws_cloudwatch_log_group.queue.name
    destination_type = "cloudwatch-logs"
    log_format       = "json"
    log_type         = "engine-log"
  }

  log_delivery_configuration {
    destination      = aws_cloudwatch_log_group.queue.name
    destination_type = "cloudwatch-logs"
    log_format       = "json"
    log_type         = "slow-log"
  }

  tags = local.tags

  lifecycle {
    precondition {
      condition     = var.snapshot_retention_days <= 35
      error_message = "ElastiCache keeps automatic snapshots at most 35 days; use snapshot_retention_days <= 35 with Redis, or the NATS engine, whose EBS snapshots can be kept 90 days."
    }
  }
}

# ElastiCache names the members of a replication group <id>-001, <id>-002, ...
locals {
  redis_members = local.redis ? [for i in range(var.redis_nodes) : format("%s-%03d", var.name, i + 1)] : []
}

resource "aws_cloudwatch_metric_alarm" "redis_cpu" {
  count = length(local.redis_members)

  alarm_name          = "${local.redis_members[count.index]}-engine-cpu"
  alarm_description   = "Ward event queue node ${local.redis_members[count.index]}: Redis engine CPU above ${var.cpu_alarm_percent}%"
  namespace           = "AWS/ElastiCache"
  metric_name         = "EngineCPUUtilization"
  dimensions          = { CacheClusterId = local.redis_members[count.index] }
  statistic           = "Average"
  period              = 300
  evaluation_periods  = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.cpu_alarm_percent
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = local.tags

  depends_on = [aws_elasticache_replication_group.redis]
}

resource "aws_cloudwatch_metric_alarm" "redis_memory" {
  count = length(local.redis_members)

  alarm_name          = "${local.redis_members[count.index]}-memory"
  alarm_description   = "Ward event queue node ${local.redis_members[count.index]}: memory use above ${var.memory_alarm_percent}%"
  namespace           = "AWS/ElastiCache"
  metric_name         = "DatabaseMemoryUsagePercentage"
  dimensions          = { CacheClusterId = local.redis_members[count.index] }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 2
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.memory_alarm_percent
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = local.tags

  depends_on = [aws_elasticache_replication_group.redis]
}

resource "aws_cloudwatch_metric_alarm" "redis_evictions" {
  count = length(local.redis_members)

  alarm_name          = "${local.redis_members[count.index]}-evictions"
  alarm_description   = "Ward event queue node ${local.redis_members[count.index]}: keys evicted, events may be lost"
  namespace           = "AWS/ElastiCache"
  metric_name         = "Evictions"
  dimensions          = { CacheClusterId = local.redis_members[count.index] }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = local.tags

  depends_on = [aws_elasticache_replication_group.redis]
}

resource "aws_cloudwatch_metric_alarm" "redis_replication_lag" {
  count = length(local.redis_members)

  alarm_name          = "${local.redis_members[count.index]}-replication-lag"
  alarm_description   = "Ward event queue node ${local.redis_members[count.index]}: replica more than 30 s behind"
  namespace           = "AWS/ElastiCache"
  metric_name         = "ReplicationLag"
  dimensions          = { CacheClusterId = local.redis_members[count.index] }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  comparison_operator = "GreaterThanThreshold"
  threshold           = 30
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = local.tags

  depends_on = [aws_elasticache_replication_group.redis]
}
