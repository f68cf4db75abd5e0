output "instance_id" {
  description = "EC2 instance id of the controller (for Session Manager: aws ssm start-session --target)."
  value       = aws_instance.this.id
}

output "public_ip" {
  description = "Elastic IP of the controller; null when public_ip is false. Point the dns_names at it."
  value       = var.public_ip ? aws_eip.this[0].public_ip : null
}

output "private_ip" {
  description = "Private IPv4 address of the controller."
  value       = aws_instance.this.private_ip
}

output "address" {
  description = "host:port agents and wardctl connect to: the first DNS name, else the public or private IP."
  value       = "${length(var.dns_names) > 0 ? var.dns_names[0] : (var.public_ip ? aws_eip.this[0].public_ip : aws_instance.this.private_ip)}:${var.port}"
}

output "security_group_id" {
  description = "Security group of the controller."
  value       = aws_security_group.this.id
}

output "role_name" {
  description = "IAM role of the controller instance, to attach further policies."
  value       = aws_iam_role.this.name
}

output "data_volume_id" {
  description = "Encrypted EBS volume holding the data directory (snapshotted daily)."
  value       = aws_ebs_volume.data.id
}

output "pki_secret_arn" {
  description = "Secrets Manager secret holding the backup of the controller's CA and policy keys."
  value       = aws_secretsmanager_secret.pki.arn
}

output "kms_key_arn" {
  description = "KMS key encrypting the data volume, the PKI backup and the logs."
  value       = local.kms_key_arn
}

output "log_group_name" {
  description = "CloudWatch log group of the controller's logs and Prometheus metrics."
  value       = aws_cloudwatch_log_group.this.name
}
