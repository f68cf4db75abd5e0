output "vpc_id" {
  description = "The VPC."
  value       = aws_vpc.this.id
}

output "controller_public_ip" {
  description = "Elastic IP of the controller: point controller_dns_name at it."
  value       = module.controller.public_ip
}

output "controller_address" {
  description = "host:port agents and wardctl use."
  value       = module.controller.address
}

output "controller_instance_id" {
  description = "Instance id of the controller, for aws ssm start-session."
  value       = module.controller.instance_id
}

output "controller_log_group" {
  description = "CloudWatch log group of the controller."
  value       = module.controller.log_group_name
}

output "event_queue_urls" {
  description = "Connection URLs of the event queue (no credentials)."
  value       = module.event_queue.urls
}

output "collector_instance_id" {
  description = "Instance id of the clinic's collector; null until controller_ca_pem is set."
  value       = one(module.collector[*].instance_id)
}

output "collector_token_secret_arn" {
  description = "Secret to put the collector's enrollment token in; null until controller_ca_pem is set."
  value       = one(module.collector[*].enrollment_token_secret_arn)
}

output "controller_pki_secret_arn" {
  description = "Secret holding the backup of the controller's CA and policy keys."
  value       = module.controller.pki_secret_arn
}
