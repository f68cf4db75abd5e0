# Shared by both engines: the KMS key, the AUTH token in Secrets Manager, the security
# groups and the log group.

data "aws_caller_identity" "current" {}

data "aws_region" "current" {}

data "aws_partition" "current" {}

locals {
  redis       = var.engine == "redis"
  nats        = var.engine == "nats"
  kms_key_arn = var.kms_key_arn != null ? var.kms_key_arn : aws_kms_key.this[0].arn
  port        = local.redis ? 6379 : 4222
  tags        = merge(var.tags, { "ward:component" = "event-queue" })
}

data "aws_iam_policy_document" "kms" {
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }

  statement {
    sid       = "CloudWatchLogsEncrypt"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["logs.${data.aws_region.current.name}.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${data.aws_partition.current.partition}:logs:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:log-group:*"]
    }
  }
}

resource "aws_kms_key" "this" {
  count = var.kms_key_arn == null ? 1 : 0

  description             = "Ward event queue ${var.name}: data at rest, AUTH token, logs"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
  tags                    = local.tags
}

resource "aws_kms_alias" "this" {
  count = var.kms_key_arn == null ? 1 : 0

  name          = "alias/${var.name}-event-queue"
  target_key_id = aws_kms_key.this[0].key_id
}

# The AUTH token is generated here and kept in Secrets Manager, encrypted with the KMS
# key; clients read it from there. It is also in the Terraform state: keep the state in an
# encrypted backend with restricted access.
resource "random_password" "auth" {
  length  = 64
  special = false
}

resource "aws_secretsmanager_secret" "auth" {
  name_prefix             = "${var.name}-auth-"
  description             = "AUTH token of the Ward event queue ${var.name}"
  kms_key_id              = local.kms_key_arn
  recovery_window_in_days = 7
  tags                    = local.tags
}

resource "aws_secretsmanager_secret_version" "auth" {
  secret_id     = aws_secretsmanager_secret.auth.id
  secret_string = random_password.auth.result
}

# Clients join this group to be let in; it has no rules of its own.
resource "aws_security_group" "clients" {
  name_prefix = "${var.name}-clients-"
  description = "Clients of the Ward event queue ${var.name}"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${var.name}-clients" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_security_group" "queue" {
  name_prefix = "${var.name}-queue-"
  description = "Ward event queue ${var.name}: clients only"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${var.name}-queue" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "clients" {
  security_group_id            = aws_security_group.queue.id
  referenced_security_group_id = aws_security_group.clients.id
  from_port                    = local.port
  to_port                      = local.port
  ip_protocol                  = "tcp"
  description                  = "queue clients"
}

resource "aws_cloudwatch_log_group" "queue" {
  name              = "/ward/${var.name}/event-queue"
  retention_in_days = var.log_retention_days
  kms_key_id        = local.kms_key_arn
  tags              = local.tags
}
