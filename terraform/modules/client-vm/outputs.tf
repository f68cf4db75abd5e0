output "instance_id" {
  description = "EC2 instance id of the collector (for Session Manager: aws ssm start-session --target)."
  value       = aws_instance.this.id
}

output "private_ip" {
  description = "Private IPv4 address of the collector."
  value       = aws_instance.this.private_ip
}

output "instance_type" {
  description = "Instance type chosen for the clinic's size."
  value       = local.instance_type
}

output "enrollment_token_secret_arn" {
  description = "Secrets Manager secret to put the collector's one-time enrollment token in (aws secretsmanager put-secret-value)."
  value       = aws_secretsmanager_secret.enrollment_token.arn
}

output "security_group_id" {
  description = "Security group of the collector."
  value       = aws_security_group.this.id
}

output "kms_key_arn" {
  description = "KMS key encrypting the collector's disk and enrollment token."
  value       = local.kms_key_arn
}
