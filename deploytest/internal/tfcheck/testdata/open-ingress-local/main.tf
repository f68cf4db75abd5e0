locals {
  everyone = ["0.0.0.0/0"]
  sources  = local.everyone
}

resource "aws_security_group" "this" {
  name = "open"

  dynamic "ingress" {
    for_each = [7443]
    content {
      from_port   = ingress.value
      to_port     = ingress.value
      protocol    = "tcp"
      cidr_blocks = local.sources
    }
  }
}
