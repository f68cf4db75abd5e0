# NATS JetStream on EC2, chosen with engine = "nats": an odd number of servers spread over
# the subnets, TLS for clients and routes from a CA made here, the AUTH token shared with
# the Redis engine, JetStream on an encrypted volume with daily snapshots, alarms.

data "aws_ssm_parameter" "al2023" {
  count = local.nats && var.ami_id == null ? 1 : 0

  name = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
}

locals {
  nats_ami = local.nats ? coalesce(var.ami_id, try(data.aws_ssm_parameter.al2023[0].insecure_value, null)) : null
}

# Fixed interfaces first, so that every server's configuration and certificate can name
# the addresses of all of them.
resource "aws_network_interface" "nats" {
  count = local.nats ? var.nats_cluster_size : 0

  subnet_id       = var.subnet_ids[count.index % length(var.subnet_ids)]
  security_groups = [aws_security_group.queue.id]
  description     = "${var.name} NATS server ${count.index}"
  tags            = merge(local.tags, { Name = "${var.name}-nats-${count.index}" })
}

resource "aws_vpc_security_group_ingress_rule" "nats_routes" {
  count = local.nats ? 1 : 0

  security_group_id            = aws_security_group.queue.id
  referenced_security_group_id = aws_security_group.queue.id
  from_port                    = 6222
  to_port                      = 6222
  ip_protocol                  = "tcp"
  description                  = "NATS cluster routes between the servers"
}

resource "aws_vpc_security_group_egress_rule" "nats_routes" {
  count = local.nats ? 1 : 0

  security_group_id            = aws_security_group.queue.id
  referenced_security_group_id = aws_security_group.queue.id
  from_port                    = 6222
  to_port                      = 6222
  ip_protocol                  = "tcp"
  description                  = "NATS cluster routes between the servers"
}

resource "aws_vpc_security_group_egress_rule" "nats_https" {
  count = local.nats ? 1 : 0

  security_group_id = aws_security_group.queue.id
  cidr_ipv4         = "0.0.0.0/0"
  from_port         = 443
  to_port           = 443
  ip_protocol       = "tcp"
  description       = "HTTPS to AWS APIs and the nats-server release download"
}

resource "tls_private_key" "nats_ca" {
  count = local.nats ? 1 : 0

  algorithm   = "ECDSA"
  ecdsa_curve = "P256"
}

resource "tls_self_signed_cert" "nats_ca" {
  count = local.nats ? 1 : 0

  private_key_pem       = tls_private_key.nats_ca[0].private_key_pem
  is_ca_certificate     = true
  validity_period_hours = 87600
  allowed_uses          = ["cert_signing", "crl_signing"]

  subject {
    common_name  = "${var.name} NATS CA"
    organization = "Ward"
  }
}

resource "tls_private_key" "nats" {
  count = local.nats ? 1 : 0

  algorithm   = "ECDSA"
  ecdsa_curve = "P256"
}

resource "tls_cert_request" "nats" {
  count = local.nats ? 1 : 0

  private_key_pem = tls_private_key.nats[0].private_key_pem
  ip_addresses    = aws_network_interface.nats[*].private_ip

  subject {
    common_name  = "${var.name} NATS"
    organization = "Ward"
  }
}

resource "tls_locally_signed_cert" "nats" {
  count = local.nats ? 1 : 0

  cert_request_pem      = tls_cert_request.nats[0].cert_request_pem
  ca_private_key_pem    = tls_private_key.nats_ca[0].private_key_pem
  ca_cert_pem           = tls_self_signed_cert.nats_ca[0].cert_pem
  validity_period_hours = 8760
  early_renewal_hours   = 720
  allowed_uses          = ["digital_signature", "key_agreement", "server_auth", "client_auth"]
}

resource "aws_secretsmanager_secret" "nats_tls" {
  count = local.nats ? 1 : 0

  name_prefix             = "${var.name}-nats-tls-"
  description             = "TLS certificate and key of the NATS servers of ${var.name}"
  kms_key_id              = local.kms_key_arn
  recovery_window_in_days = 7
  tags                    = local.tags
}

resource "aws_secretsmanager_secret_version" "nats_tls" {
  count = local.nats ? 1 : 0

  secret_id = aws_secretsmanager_secret.nats_tls[0].id
  secret_string = jsonencode({
    cert = tls_locally_signed_cert.nats[0].cert_pem
    key  = tls_private_key.nats[0].private_key_pem
    ca   = tls_self_signed_cert.nats_ca[0].cert_pem
  })
}

data "aws_iam_policy_document" "nats_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "nats" {
  count = local.nats ? 1 : 0

  statement {
    sid       = "ReadQueueSecrets"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.auth.arn, aws_secretsmanager_secret.nats_tls[0].arn]
  }

  statement {
    sid       = "DecryptQueueSecrets"
    actions   = ["kms:Decrypt"]
    resources = [local.kms_key_arn]
  }
}

resource "aws_iam_role" "nats" {
  count = local.nats ? 1 : 0

  name_prefix        = "${var.name}-nats-"
  assume_role_policy = data.aws_iam_policy_document.nats_assume.json
  tags               = local.tags
}

resource "aws_iam_role_policy" "nats" {
  count = local.nats ? 1 : 0

  name   = "read-queue-secrets"
  role   = aws_iam_role.nats[0].id
  policy = data.aws_iam_policy_document.nats[0].json
}

resource "aws_iam_role_policy_attachment" "nats_ssm" {
  count = local.nats ? 1 : 0

  role       = aws_iam_role.nats[0].name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

resource "aws_iam_role_policy_attachment" "nats_cloudwatch" {
  count = local.nats ? 1 : 0

  role       = aws_iam_role.nats[0].name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/CloudWatchAgentServerPolicy"
}

resource "aws_iam_instance_profile" "nats" {
  count = local.nats ? 1 : 0

  name_prefix = "${var.name}-nats-"
  role        = aws_iam_role.nats[0].name
  tags        = local.tags
}

resource "aws_instance" "nats" {
  count = local.nats ? var.nats_cluster_size : 0

  ami                  = local.nats_ami
  instance_type        = var.nats_instance_type
  iam_instance_profile = aws_iam_instance_profile.nats[0].name
  monitoring           = true

  network_interface {
    network_interface_id = aws_network_interface.nats[count.index].id
    device_index         = 0
  }

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

  ebs_block_device {
    device_name = "/dev/sdf"
    volume_type = "gp3"
    volume_size = var.nats_volume_size_gb
    encrypted   = true
    kms_key_id  = local.kms_key_arn
    tags        = merge(local.tags, { "ward:snapshot" = var.name })
  }

  user_data_replace_on_change = true
  user_data = templatefile("${path.module}/nats-user-data.sh.tftpl", {
    name            = var.name
    index           = count.index
    region          = data.aws_region.current.name
    version         = var.nats_server_version
    sha256          = coalesce(var.nats_server_sha256, "unset")
    auth_secret_arn = aws_secretsmanager_secret.auth.arn
    tls_secret_arn  = aws_secretsmanager_secret.nats_tls[0].arn
    log_group       = aws_cloudwatch_log_group.queue.name
    routes          = [for ip in aws_network_interface.nats[*].private_ip : "nats-route://${ip}:6222"]
  })

  tags = merge(local.tags, { Name = "${var.name}-nats-${count.index}" })

  lifecycle {
    precondition {
      condition     = var.nats_server_sha256 != null
      error_message = "Set nats_server_sha256 to the SHA-256 of the nats-server release archive."
    }
  }

  depends_on = [aws_secretsmanager_secret_version.auth, aws_secretsmanager_secret_version.nats_tls]
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
  count = local.nats ? 1 : 0

  name_prefix        = "${var.name}-dlm-"
  assume_role_policy = data.aws_iam_policy_document.dlm_assume.json
  tags               = local.tags
}

resource "aws_iam_role_policy_attachment" "dlm" {
  count = local.nats ? 1 : 0

  role       = aws_iam_role.dlm[0].name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AWSDataLifecycleManagerServiceRole"
}

resource "aws_dlm_lifecycle_policy" "nats" {
  count = local.nats ? 1 : 0

  description        = "Daily snapshots of the JetStream volumes of ${var.name}"
  execution_role_arn = aws_iam_role.dlm[0].arn
  state              = "ENABLED"

  policy_details {
    resource_types = ["VOLUME"]
    target_tags    = { "ward:snapshot" = var.name }

    schedule {
      name      = "daily"
      copy_tags = true

      create_rule {
        interval      = 24
        interval_unit = "HOURS"
        times         = [split("-", var.snapshot_window)[0]]
      }

      retain_rule {
        interval      = var.snapshot_retention_days
        interval_unit = "DAYS"
      }
    }
  }

  tags = local.tags
}

resource "aws_cloudwatch_metric_alarm" "nats_status" {
  count = local.nats ? var.nats_cluster_size : 0

  alarm_name          = "${var.name}-nats-${count.index}-status"
  alarm_description   = "NATS server ${count.index} of ${var.name} failed its status checks; EC2 recovers it"
  namespace           = "AWS/EC2"
  metric_name         = "StatusCheckFailed_System"
  dimensions          = { InstanceId = aws_instance.nats[count.index].id }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 2
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  alarm_actions       = concat(["arn:${data.aws_partition.current.partition}:automate:${data.aws_region.current.name}:ec2:recover"], var.alarm_actions)
  ok_actions          = var.alarm_actions
  tags                = local.tags
}

resource "aws_cloudwatch_metric_alarm" "nats_cpu" {
  count = local.nats ? var.nats_cluster_size : 0

  alarm_name          = "${var.name}-nats-${count.index}-cpu"
  alarm_description   = "NATS server ${count.index} of ${var.name}: CPU above ${var.cpu_alarm_percent}%"
  namespace           = "AWS/EC2"
  metric_name         = "CPUUtilization"
  dimensions          = { InstanceId = aws_instance.nats[count.index].id }
  statistic           = "Average"
  period              = 300
  evaluation_periods  = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.cpu_alarm_percent
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = local.tags
}
