resource "aws_vpc_security_group_ingress_rule" "this" {
  security_group_id = "sg-1"
  cidr_ipv4         = "0.0.0.0/0"
  from_port         = 7443
  to_port           = 7443
  ip_protocol       = "tcp"
}
