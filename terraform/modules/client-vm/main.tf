data "aws_caller_identity" "current" {}

data "aws_region" "current" {}

data "aws_partition" "current" {}

# The official NixOS AMIs are published by this account.
data "aws_ami" "nixos" {
  count = var.ami_id == null ? 1 : 0

  most_recent = true
  owners      = ["427812963091"]

  filter {
    name   = "name"
    values = ["nixos/${var.nixos_release}*"]
  }

  filter {
    name   = "architecture"
    values = ["x86_64"]
  }
}

locals {
  name            = "ward-collector-${var.clinic}"
  kms_key_arn     = var.kms_key_arn != null ? var.kms_key_arn : aws_kms_key.this[0].arn
  partition       = data.aws_partition.current.partition
  region          = data.aws_region.current.name
  sizes           = { small = "t3.small", medium = "t3.medium", large = "t3.large" }
  instance_type   = coalesce(var.instance_type, local.sizes[var.clinic_size])
  controller_port = tonumber(split(":", var.controller_address)[1])
  tags            = merge(var.tags, { "ward:component" = "collector", "ward:tenant" = var.clinic })
}

resource "aws_kms_key" "this" {
  count = var.kms_key_arn == null ? 1 : 0

  description             = "Ward collector of ${var.clinic}: disk and enrollment token"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  tags                    = local.tags
}

# The one-time enrollment token. Terraform creates the secret without a value, so the
# token is never in the state: the operator makes it with `wardctl token create` and
# stores it with `aws secretsmanager put-secret-value`. The VM waits for it.
resource "aws_secretsmanager_secret" "enrollment_token" {
  name_prefix             = "${local.name}-enrollment-"
  description             = "One-time Ward enrollment token of the collector of ${var.clinic}"
  kms_key_id              = local.kms_key_arn
  recovery_window_in_days = 7
  tags                    = local.tags
}

resource "aws_security_group" "this" {
  name_prefix = "${local.name}-"
  description = "Ward collector of ${var.clinic}"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = local.name })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "ssh" {
  for_each = toset(var.ssh_allowed_cidrs)

  security_group_id = aws_security_group.this.id
  cidr_ipv4         = each.value
  from_port         = 22
  to_port           = 22
  ip_protocol       = "tcp"
  description       = "SSH with an MSP certificate"
}

resource "aws_vpc_security_group_egress_rule" "https" {
  security_group_id = aws_security_group.this.id
  cidr_ipv4         = "0.0.0.0/0"
  from_port         = 443
  to_port           = 443
  ip_protocol       = "tcp"
  description       = "HTTPS: AWS APIs, the Nix binary cache, the Ward source"
}

resource "aws_vpc_security_group_egress_rule" "controller" {
  security_group_id = aws_security_group.this.id
  cidr_ipv4         = "0.0.0.0/0"
  from_port         = local.controller_port
  to_port           = local.controller_port
  ip_protocol       = "tcp"
  description       = "The Ward controller's gRPC port"
}

resource "aws_vpc_security_group_egress_rule" "clinic" {
  for_each = toset(var.clinic_cidrs)

  security_group_id = aws_security_group.this.id
  cidr_ipv4         = each.value
  ip_protocol       = "-1"
  description       = "Discovery and agent bootstrap in the clinic's LAN"
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "collector" {
  statement {
    sid       = "ReadEnrollmentToken"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.enrollment_token.arn]
  }

  statement {
    sid       = "DecryptEnrollmentToken"
    actions   = ["kms:Decrypt"]
    resources = [local.kms_key_arn]
  }
}

resource "aws_iam_role" "this" {
  name_prefix        = "${local.name}-"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = local.tags
}

resource "aws_iam_role_policy" "collector" {
  name   = "ward-collector"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.collector.json
}

resource "aws_iam_role_policy_attachment" "ssm" {
  role       = aws_iam_role.this.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

resource "aws_iam_instance_profile" "this" {
  name_prefix = "${local.name}-"
  role        = aws_iam_role.this.name
  tags        = local.tags
}

resource "aws_instance" "this" {
  ami                    = var.ami_id != null ? var.ami_id : data.aws_ami.nixos[0].id
  instance_type          = local.instance_type
  subnet_id              = var.subnet_id
  vpc_security_group_ids = [aws_security_group.this.id]
  iam_instance_profile   = aws_iam_instance_profile.this.name
  monitoring             = true

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  root_block_device {
    volume_type = "gp3"
    volume_size = var.root_volume_size_gb
    encrypted   = true
    kms_key_id  = local.kms_key_arn
  }

  # NixOS's amazon-init applies user data that is a NixOS configuration.
  user_data_replace_on_change = false
  user_data = templatefile("${path.module}/configuration.nix.tftpl", {
    release            = var.nixos_release
    clinic             = var.clinic
    region             = local.region
    controller_address = var.controller_address
    controller_ca_pem  = trimspace(var.controller_ca_pem)
    token_secret_arn   = aws_secretsmanager_secret.enrollment_token.arn
    ward_source_url    = var.ward_source_url
    ward_source_sha256 = var.ward_source_sha256
    ssh_ca_public_key  = trimspace(var.ssh_ca_public_key)
    ssh_user           = var.ssh_user
    ssh_principals     = var.ssh_principals
  })

  tags = merge(local.tags, { Name = local.name })

  lifecycle {
    ignore_changes = [ami]
  }
}

resource "aws_cloudwatch_metric_alarm" "status" {
  alarm_name          = "${local.name}-status"
  alarm_description   = "Ward collector of ${var.clinic} failed its system status check; EC2 recovers it"
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
