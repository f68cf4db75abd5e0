output "engine" {
  description = "The queue engine: \"redis\" or \"nats\"."
  value       = var.engine
}

output "endpoint" {
  description = "Address clients connect to: the Redis primary endpoint, or the first NATS server."
  value       = local.redis ? aws_elasticache_replication_group.redis[0].primary_endpoint_address : aws_network_interface.nats[0].private_ip
}

output "reader_endpoint" {
  description = "Redis reader endpoint (replicas); null for NATS."
  value       = local.redis ? aws_elasticache_replication_group.redis[0].reader_endpoint_address : null
}

output "port" {
  description = "TCP port of the queue: 6379 for Redis, 4222 for NATS."
  value       = local.port
}

output "urls" {
  description = "Connection URLs without credentials: one rediss:// URL, or a tls:// URL per NATS server."
  value       = local.redis ? ["rediss://${aws_elasticache_replication_group.redis[0].primary_endpoint_address}:${local.port}"] : [for ip in aws_network_interface.nats[*].private_ip : "tls://${ip}:${local.port}"]
}

output "auth_token_secret_arn" {
  description = "Secrets Manager secret holding the AUTH token clients present."
  value       = aws_secretsmanager_secret.auth.arn
}

output "nats_ca_pem" {
  description = "CA certificate (PEM) that NATS clients verify the servers with; null for Redis, whose endpoint has an Amazon certificate."
  value       = local.nats ? tls_self_signed_cert.nats_ca[0].cert_pem : null
}

output "client_security_group_id" {
  description = "Security group to attach to the queue's clients (the controller); only its members may connect."
  value       = aws_security_group.clients.id
}

output "security_group_id" {
  description = "Security group of the queue itself."
  value       = aws_security_group.queue.id
}

output "kms_key_arn" {
  description = "KMS key encrypting the queue's data, snapshots, AUTH token and logs."
  value       = local.kms_key_arn
}

output "log_group_name" {
  description = "CloudWatch log group receiving the queue's logs."
  value       = aws_cloudwatch_log_group.queue.name
}
