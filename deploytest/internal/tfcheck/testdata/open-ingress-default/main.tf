variable "allowed" {
  type        = list(string)
  description = "Defaults to the whole internet."
  default     = ["0.0.0.0/0"]
}

resource "aws_vpc_security_group_ingress_rule" "this" {
  for_each          = toset(var.allowed)
  security_group_id = "sg-1"
  cidr_ipv4         = each.value
  from_port         = 7443
  to_port           = 7443
  ip_protocol       = "tcp"
}
