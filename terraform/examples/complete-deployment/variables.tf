variable "region" {
  type        = string
  description = "AWS region of the deployment (choose one covered by your AWS Business Associate Addendum)."
  default     = "us-east-1"
}

variable "name" {
  type        = string
  description = "Name of the installation, prefix of every resource."
  default     = "ward"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name))
    error_message = "The name is 2 to 21 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "vpc_cidr" {
  type        = string
  description = "IPv4 range of the VPC; split into two public and two private subnets."
  default     = "10.40.0.0/16"

  validation {
    condition     = can(cidrnetmask(var.vpc_cidr))
    error_message = "Give an IPv4 range in CIDR notation."
  }
}

variable "allowed_cidrs" {
  type        = list(string)
  description = "Public IPv4 ranges allowed to reach the controller: the clinics' internet addresses and the MSP's offices."
}

variable "trust_domain" {
  type        = string
  description = "Trust domain of the installation, such as ward.example-msp.com."
}

variable "controller_dns_name" {
  type        = string
  description = "DNS name agents use for the controller; point it at the controller_public_ip output."
}

variable "controller_package_s3_uri" {
  type        = string
  description = "S3 URI of the ward-controller .rpm built by make package."
}

variable "alarm_email" {
  type        = string
  description = "Address that receives the alarms (confirm the SNS subscription mail)."
}

variable "clinic" {
  type        = string
  description = "Tenant id of the first clinic."
}

variable "clinic_size" {
  type        = string
  description = "Size of the first clinic: small, medium or large."
  default     = "small"
}

variable "clinic_cidrs" {
  type        = list(string)
  description = "The first clinic's LAN ranges, reached through a site-to-site VPN attached to the VPC."
  default     = []
}

variable "controller_ca_pem" {
  type        = string
  description = "The controller's ca.pem; empty until the controller has started, which leaves the collector out (see the README's two-step apply)."
  default     = ""
}

variable "ward_source_url" {
  type        = string
  description = "URL of the Ward source .tar.gz the collector builds its agent from."
}

variable "ward_source_sha256" {
  type        = string
  description = "Nix hash of the unpacked source (nix-prefetch-url --unpack)."
}

variable "ssh_ca_public_key" {
  type        = string
  description = "Public key of the MSP's SSH user CA."
}

variable "ssh_allowed_cidrs" {
  type        = list(string)
  description = "Ranges allowed to SSH to the collector (the MSP's VPN); empty closes SSH."
  default     = []
}

variable "queue_engine" {
  type        = string
  description = "Event queue engine: redis or nats."
  default     = "redis"
}
