resource "aws_security_group_rule" "this" {
  type              = "ingress"
  security_group_id = "sg-1"
  cidr_blocks       = ["0.0.0.0/0"]
  from_port         = 7443
  to_port           = 7443
  protocol          = "tcp"
}
