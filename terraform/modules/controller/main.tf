data "aws_caller_identity" "current" {}

data "aws_region" "current" {}

data "aws_partition" "current" {}

data "aws_subnet" "this" {
  id = var.subnet_id
}

data "aws_vpc" "this" {
  id = var.vpc_id
}

data "aws_ssm_parameter" "al2023" {
  count = var.ami_id == null ? 1 : 0

  name = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
}

locals {
  kms_key_arn = var.kms_key_arn != null ? var.kms_key_arn : aws_kms_key.this[0].arn
  ami_id      = var.ami_id != null ? var.ami_id : data.aws_ssm_parameter.al2023[0].insecure_value
  data_dir    = "/var/lib/ward-controller"
  partition   = data.aws_partition.current.partition
  region      = data.aws_region.current.name
  package     = regex("^s3://(?P<bucket>[^/]+)/(?P<key>.+)$", var.package_s3_uri)
  tags        = merge(var.tags, { "ward:component" = "controller" })
}

# --- Encryption key -------------------------------------------------------------------

data "aws_iam_policy_document" "kms" {
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }

  statement {
    sid       = "CloudWatchLogsEncrypt"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${local.region}:${data.aws_caller_identity.current.account_id}:log-group:*"]
    }
  }
}

resource "aws_kms_key" "this" {
  count = var.kms_key_arn == null ? 1 : 0

  description             = "Ward controller ${var.name}: data volume, PKI backup, logs"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
  tags                    = local.tags
}

resource "aws_kms_alias" "this" {
  count = var.kms_key_arn == null ? 1 : 0

  name          = "alias/${var.name}-controller"
  target_key_id = aws_kms_key.this[0].key_id
}

# --- CA and policy keys ---------------------------------------------------------------

# The controller's first boot runs `ward-controller init` and stores its PKI (CA and
# policy keys, trust bundle, serving and admin certificates) here as a base64 tarball;
# a replacement instance restores it, so agents keep trusting the controller. Terraform
# never sees the value.
resource "aws_secretsmanager_secret" "pki" {
  name_prefix             = "${var.name}-pki-"
  description             = "PKI of the Ward controller ${var.name}: CA and policy keys, certificates"
  kms_key_id              = local.kms_key_arn
  recovery_window_in_days = 30
  tags                    = local.tags
}

# --- Network --------------------------------------------------------------------------

resource "aws_security_group" "this" {
  name_prefix = "${var.name}-controller-"
  description = "Ward controller ${var.name}: gRPC from the allowed ranges only"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${var.name}-controller" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "grpc" {
  for_each = toset(var.allowed_cidrs)

  security_group_id = aws_security_group.this.id
  cidr_ipv4         = each.value
  from_port         = var.port
  to_port           = var.port
  ip_protocol       = "tcp"
  description       = "Ward gRPC (agents, wardctl)"
}

resource "aws_vpc_security_group_egress_rule" "https" {
  security_group_id = aws_security_group.this.id
  cidr_ipv4         = "0.0.0.0/0"
  from_port         = 443
  to_port           = 443
  ip_protocol       = "tcp"
  description       = "HTTPS to AWS APIs (S3, Secrets Manager, CloudWatch, SSM) and package mirrors"
}

resource "aws_vpc_security_group_egress_rule" "vpc" {
  security_group_id = aws_security_group.this.id
  cidr_ipv4         = data.aws_vpc.this.cidr_block
  ip_protocol       = "tcp"
  from_port         = 1
  to_port           = 65535
  description       = "Services inside the VPC, such as the event queue"
}

resource "aws_eip" "this" {
  count = var.public_ip ? 1 : 0

  domain   = "vpc"
  instance = aws_instance.this.id
  tags     = merge(local.tags, { Name = "${var.name}-controller" })
}

# --- Instance -------------------------------------------------------------------------

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "controller" {
  statement {
    sid       = "FetchPackage"
    actions   = ["s3:GetObject"]
    resources = ["arn:${local.partition}:s3:::${local.package.bucket}/${local.package.key}"]
  }

  statement {
    sid       = "KeepPKI"
    actions   = ["secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue"]
    resources = [aws_secretsmanager_secret.pki.arn]
  }

  statement {
    sid       = "UseKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [local.kms_key_arn]
  }

  dynamic "statement" {
    for_each = length(var.readable_secret_arns) > 0 ? [1] : []

    content {
      sid       = "ReadGrantedSecrets"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = var.readable_secret_arns
    }
  }
}

resource "aws_iam_role" "this" {
  name_prefix        = "${var.name}-controller-"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = local.tags
}

resource "aws_iam_role_policy" "controller" {
  name   = "ward-controller"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.controller.json
}

# Operators open a shell with Session Manager: no SSH port is open.
resource "aws_iam_role_policy_attachment" "ssm" {
  role       = aws_iam_role.this.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

resource "aws_iam_role_policy_attachment" "cloudwatch" {
  role       = aws_iam_role.this.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/CloudWatchAgentServerPolicy"
}

resource "aws_iam_instance_profile" "this" {
  name_prefix = "${var.name}-controller-"
  role        = aws_iam_role.this.name
  tags        = local.tags
}

resource "aws_instance" "this" {
  ami                    = local.ami_id
  instance_type          = var.instance_type
  subnet_id              = var.subnet_id
  vpc_security_group_ids = concat([aws_security_group.this.id], var.additional_security_group_ids)
  iam_instance_profile   = aws_iam_instance_profile.this.name
  monitoring             = true

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  root_block_device {
    volume_type = "gp3"
    volume_size = 16
    encrypted   = true
    kms_key_id  = local.kms_key_arn
  }

  user_data_replace_on_change = false
  user_data = templatefile("${path.module}/controller-user-data.sh.tftpl", {
    name               = var.name
    region             = local.region
    data_dir           = local.data_dir
    package_s3_uri     = var.package_s3_uri
    trust_domain       = var.trust_domain
    dns_names          = join(" ", var.dns_names)
    port               = var.port
    heartbeat_interval = var.heartbeat_interval
    cert_ttl           = var.cert_ttl
    pki_secret_arn     = aws_secretsmanager_secret.pki.arn
    log_group          = aws_cloudwatch_log_group.this.name
  })

  tags = merge(local.tags, { Name = "${var.name}-controller" })

  lifecycle {
    ignore_changes = [ami]
  }
}

# --- Data directory -------------------------------------------------------------------

resource "aws_ebs_volume" "data" {
  availability_zone = data.aws_subnet.this.availability_zone
  size              = var.data_volume_size_gb
  type              = "gp3"
  encrypted         = true
  kms_key_id        = local.kms_key_arn
  tags              = merge(local.tags, { Name = "${var.name}-controller-data", "ward:snapshot" = "${var.name}-controller" })
}

resource "aws_volume_attachment" "data" {
  device_name = "/dev/sdf"
  volume_id   = aws_ebs_volume.data.id
  instance_id = aws_instance.this.id
}

data "aws_iam_policy_document" "dlm_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["dlm.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "dlm" {
  name_prefix        = "${var.name}-dlm-"
  assume_role_policy = data.aws_iam_policy_document.dlm_assume.json
  tags               = local.tags
}

resource "aws_iam_role_policy_attachment" "dlm" {
  role       = aws_iam_role.dlm.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AWSDataLifecycleManagerServiceRole"
}

resource "aws_dlm_lifecycle_policy" "data" {
  description        = "Daily snapshots of the data volume of the Ward controller ${var.name}"
  execution_role_arn = aws_iam_role.dlm.arn
  state              = "ENABLED"

  policy_details {
    resource_types = ["VOLUME"]
    target_tags    = { "ward:snapshot" = "${var.name}-controller" }

    schedule {
      name      = "daily"
      copy_tags = true

      create_rule {
        interval      = 24
        interval_unit = "HOURS"
        times         = ["03:00"]
      }

      retain_rule {
        interval      = var.backup_retention_days
        interval_unit = "DAYS"
      }
    }
  }

  tags = local.tags
}

# --- Logs, metrics and alarms ---------------------------------------------------------

resource "aws_cloudwatch_log_group" "this" {
  name              = "/ward/${var.name}/controller"
  retention_in_days = var.log_retention_days
  kms_key_id        = local.kms_key_arn
  tags              = local.tags
}

resource "aws_cloudwatch_metric_alarm" "status" {
  alarm_name          = "${var.name}-controller-status"
  alarm_description   = "Ward controller ${var.name} failed its system status check; EC2 recovers it"
  namespace           = "AWS/EC2"
  metric_name         = "StatusCheckFailed_System"
  dimensions          = { InstanceId = aws_instance.this.id }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 2
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  alarm_actions       = concat(["arn:${local.partition}:automate:${local.region}:ec2:recover"], var.alarm_actions)
  ok_actions          = var.alarm_actions
  tags                = local.tags
}

resource "aws_cloudwatch_metric_alarm" "cpu" {
  alarm_name          = "${var.name}-controller-cpu"
  alarm_description   = "Ward controller ${var.name}: CPU above 80% for 15 minutes"
  namespace           = "AWS/EC2"
  metric_name         = "CPUUtilization"
  dimensions          = { InstanceId = aws_instance.this.id }
  statistic           = "Average"
  period              = 300
  evaluation_periods  = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = 80
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = local.tags
}

resource "aws_cloudwatch_metric_alarm" "data_disk" {
  alarm_name          = "${var.name}-controller-data-disk"
  alarm_description   = "Ward controller ${var.name}: data volume more than 80% full"
  namespace           = "CWAgent"
  metric_name         = "disk_used_percent"
  dimensions          = { InstanceId = aws_instance.this.id, path = local.data_dir, fstype = "xfs" }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 80
  treat_missing_data  = "breaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = local.tags
}
