# A complete Ward installation for an MSP's first clinic: a VPC with flow logs, the event
# queue, the controller, alarms by mail, and the clinic's collector VM.

data "aws_availability_zones" "available" {
  state = "available"
}

locals {
  azs = slice(data.aws_availability_zones.available.names, 0, 2)
}

# --- VPC ------------------------------------------------------------------------------

resource "aws_vpc" "this" {
  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true
  tags                 = { Name = var.name }
}

resource "aws_subnet" "public" {
  count = 2

  vpc_id            = aws_vpc.this.id
  cidr_block        = cidrsubnet(var.vpc_cidr, 8, count.index)
  availability_zone = local.azs[count.index]
  tags              = { Name = "${var.name}-public-${count.index}" }
}

resource "aws_subnet" "private" {
  count = 2

  vpc_id            = aws_vpc.this.id
  cidr_block        = cidrsubnet(var.vpc_cidr, 8, count.index + 10)
  availability_zone = local.azs[count.index]
  tags              = { Name = "${var.name}-private-${count.index}" }
}

resource "aws_internet_gateway" "this" {
  vpc_id = aws_vpc.this.id
  tags   = { Name = var.name }
}

resource "aws_eip" "nat" {
  domain = "vpc"
  tags   = { Name = "${var.name}-nat" }
}

resource "aws_nat_gateway" "this" {
  allocation_id = aws_eip.nat.id
  subnet_id     = aws_subnet.public[0].id
  tags          = { Name = var.name }

  depends_on = [aws_internet_gateway.this]
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.this.id
  tags   = { Name = "${var.name}-public" }

  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.this.id
  }
}

resource "aws_route_table" "private" {
  vpc_id = aws_vpc.this.id
  tags   = { Name = "${var.name}-private" }

  route {
    cidr_block     = "0.0.0.0/0"
    nat_gateway_id = aws_nat_gateway.this.id
  }
}

resource "aws_route_table_association" "public" {
  count = 2

  subnet_id      = aws_subnet.public[count.index].id
  route_table_id = aws_route_table.public.id
}

resource "aws_route_table_association" "private" {
  count = 2

  subnet_id      = aws_subnet.private[count.index].id
  route_table_id = aws_route_table.private.id
}

# The default security group of the VPC lets nothing in or out.
resource "aws_default_security_group" "this" {
  vpc_id = aws_vpc.this.id
}

# VPC flow logs: who talked to what, for the audit trail.
resource "aws_cloudwatch_log_group" "flow" {
  name              = "/ward/${var.name}/vpc-flow"
  retention_in_days = 365
}

data "aws_iam_policy_document" "flow_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["vpc-flow-logs.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "flow" {
  statement {
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogGroups", "logs:DescribeLogStreams"]
    resources = ["${aws_cloudwatch_log_group.flow.arn}:*"]
  }
}

resource "aws_iam_role" "flow" {
  name_prefix        = "${var.name}-flow-"
  assume_role_policy = data.aws_iam_policy_document.flow_assume.json
}

resource "aws_iam_role_policy" "flow" {
  name   = "vpc-flow-logs"
  role   = aws_iam_role.flow.id
  policy = data.aws_iam_policy_document.flow.json
}

resource "aws_flow_log" "this" {
  vpc_id          = aws_vpc.this.id
  traffic_type    = "ALL"
  log_destination = aws_cloudwatch_log_group.flow.arn
  iam_role_arn    = aws_iam_role.flow.arn
}

# --- Alarms ---------------------------------------------------------------------------

resource "aws_sns_topic" "alarms" {
  name              = "${var.name}-alarms"
  kms_master_key_id = "alias/aws/sns"
}

resource "aws_sns_topic_subscription" "mail" {
  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

# --- Ward -----------------------------------------------------------------------------

module "event_queue" {
  source = "../../modules/event-queue"

  name          = "${var.name}-queue"
  engine        = var.queue_engine
  vpc_id        = aws_vpc.this.id
  subnet_ids    = aws_subnet.private[*].id
  alarm_actions = [aws_sns_topic.alarms.arn]
}

module "controller" {
  source = "../../modules/controller"

  name                          = var.name
  vpc_id                        = aws_vpc.this.id
  subnet_id                     = aws_subnet.public[0].id
  allowed_cidrs                 = var.allowed_cidrs
  trust_domain                  = var.trust_domain
  dns_names                     = [var.controller_dns_name]
  package_s3_uri                = var.controller_package_s3_uri
  additional_security_group_ids = [module.event_queue.client_security_group_id]
  readable_secret_arns          = [module.event_queue.auth_token_secret_arn]
  alarm_actions                 = [aws_sns_topic.alarms.arn]
}

module "collector" {
  source = "../../modules/client-vm"
  count  = var.controller_ca_pem == "" ? 0 : 1

  clinic             = var.clinic
  clinic_size        = var.clinic_size
  vpc_id             = aws_vpc.this.id
  subnet_id          = aws_subnet.private[0].id
  controller_address = module.controller.address
  controller_ca_pem  = var.controller_ca_pem
  ward_source_url    = var.ward_source_url
  ward_source_sha256 = var.ward_source_sha256
  ssh_ca_public_key  = var.ssh_ca_public_key
  ssh_allowed_cidrs  = var.ssh_allowed_cidrs
  clinic_cidrs       = var.clinic_cidrs
  alarm_actions      = [aws_sns_topic.alarms.arn]
}
