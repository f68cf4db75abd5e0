terraform {
  required_version = ">= 1.6"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }
}

variable "allowed_cidrs" {
  type        = list(string)
  description = "Ranges allowed to connect."

  validation {
    condition     = length(var.allowed_cidrs) > 0
    error_message = "Give at least one range."
  }
}

variable "ports" {
  type        = map(number)
  description = "Ports by name."
  default     = { grpc = 7443 }
}

variable "optional_note" {
  type        = string
  description = "A note that may be null."
  default     = null
}

locals {
  name  = "good"
  ports = { for k, p in var.ports : k => p + 0 }
}

data "aws_vpc" "this" {
  default = true
}

module "child" {
  source = "../child"
  name   = local.name
}

resource "aws_security_group" "this" {
  name   = module.child.id
  vpc_id = data.aws_vpc.this.id

  dynamic "ingress" {
    for_each = local.ports
    content {
      from_port   = ingress.value
      to_port     = ingress.value
      protocol    = "tcp"
      cidr_blocks = var.allowed_cidrs
    }
  }

  egress {
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }

  lifecycle {
    ignore_changes = [description]
  }
}

resource "aws_vpc_security_group_ingress_rule" "each" {
  for_each          = toset(var.allowed_cidrs)
  security_group_id = aws_security_group.this.id
  cidr_ipv4         = each.value
  from_port         = 22
  to_port           = 22
  ip_protocol       = "tcp"
}

resource "aws_security_group_rule" "out" {
  type              = "egress"
  security_group_id = aws_security_group.this.id
  from_port         = 443
  to_port           = 443
  protocol          = "tcp"
  cidr_blocks       = ["0.0.0.0/0"]
}

output "group_id" {
  description = "The security group."
  value       = aws_security_group.this.id
}

output "names" {
  description = "Names, from a for expression."
  value       = [for n, p in local.ports : "${n}:${p}"]
}
