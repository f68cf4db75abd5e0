variable "clinic" {
  type        = string
  description = "Tenant id of the clinic in Ward (as in `wardctl tenant create`); names the VM and its resources."

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{0,40}[a-z0-9]$", var.clinic))
    error_message = "The clinic id is 2 to 42 lowercase letters, digits or hyphens."
  }
}

variable "vpc_id" {
  type        = string
  description = "VPC of the collector; it reaches the clinic's LAN through the VPC's site-to-site VPN."
}

variable "subnet_id" {
  type        = string
  description = "Private subnet of the collector."
}

variable "clinic_size" {
  type        = string
  description = "Size of the clinic, which sets the instance type: small (up to 25 devices), medium (up to 100), large (more)."
  default     = "small"

  validation {
    condition     = contains(["small", "medium", "large"], var.clinic_size)
    error_message = "The clinic size is small, medium or large."
  }
}

variable "instance_type" {
  type        = string
  description = "EC2 instance type; null picks one from clinic_size."
  default     = null
}

variable "nixos_release" {
  type        = string
  description = "NixOS release of the image and of the channel the configuration is built from."
  default     = "25.05"

  validation {
    condition     = can(regex("^[0-9]{2}\\.(05|11)$", var.nixos_release))
    error_message = "Give a NixOS release such as 25.05."
  }
}

variable "ami_id" {
  type        = string
  description = "AMI of the collector; null takes the latest official NixOS AMI of nixos_release."
  default     = null
}

variable "controller_address" {
  type        = string
  description = "host:port of the Ward controller (the controller module's address output)."

  validation {
    condition     = can(regex("^[A-Za-z0-9.-]+:[0-9]{1,5}$", var.controller_address))
    error_message = "Give host:port, such as ward.example-msp.com:7443."
  }
}

variable "controller_ca_pem" {
  type        = string
  description = "The controller's trust bundle (the data directory's ca.pem), which the agent verifies the controller with at enrollment."

  validation {
    condition     = can(regex("-----BEGIN CERTIFICATE-----", var.controller_ca_pem))
    error_message = "Give the PEM text of ca.pem."
  }
}

variable "ward_source_url" {
  type        = string
  description = "URL of a .tar.gz of the Ward source tree (a release or the MSP's mirror) whose nix/ directory provides the agent's NixOS module and package."

  validation {
    condition     = can(regex("^https://", var.ward_source_url))
    error_message = "Give an https:// URL."
  }
}

variable "ward_source_sha256" {
  type        = string
  description = "Nix hash of the unpacked source (nix-prefetch-url --unpack URL), so the VM builds exactly the reviewed code."

  validation {
    condition     = can(regex("^([0-9a-z]{52}|sha256-[A-Za-z0-9+/]{43}=)$", var.ward_source_sha256))
    error_message = "Give the hash printed by nix-prefetch-url --unpack (52 base-32 characters) or an SRI sha256- hash."
  }
}

variable "ssh_ca_public_key" {
  type        = string
  description = "Public key of the MSP's SSH user CA. SSH accepts only certificates it signed: no password, no authorized_keys."

  validation {
    condition     = can(regex("^(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)|ssh-rsa) [A-Za-z0-9+/=]+", var.ssh_ca_public_key))
    error_message = "Give an OpenSSH public key line."
  }
}

variable "ssh_user" {
  type        = string
  description = "Login of the MSP's technicians on the collector (member of wheel)."
  default     = "msp"

  validation {
    condition     = can(regex("^[a-z_][a-z0-9_-]{0,30}$", var.ssh_user))
    error_message = "Give a lowercase user name."
  }
}

variable "ssh_principals" {
  type        = list(string)
  description = "Certificate principals allowed to log in as ssh_user."
  default     = ["msp-technician"]

  validation {
    condition     = length(var.ssh_principals) > 0 && alltrue([for p in var.ssh_principals : can(regex("^[A-Za-z0-9@._-]+$", p))])
    error_message = "Give at least one principal of letters, digits, @ . _ or -."
  }
}

variable "ssh_allowed_cidrs" {
  type        = list(string)
  description = "IPv4 ranges allowed to reach SSH (the MSP's VPN); empty closes SSH, leaving Session Manager."
  default     = []

  validation {
    condition     = alltrue([for c in var.ssh_allowed_cidrs : can(cidrnetmask(c))])
    error_message = "Give IPv4 ranges in CIDR notation."
  }
}

variable "clinic_cidrs" {
  type        = list(string)
  description = "The clinic's subnets, reached through the VPN, that the collector may scan and bootstrap agents in."
  default     = []

  validation {
    condition     = alltrue([for c in var.clinic_cidrs : can(cidrnetmask(c))])
    error_message = "Give IPv4 ranges in CIDR notation."
  }
}

variable "root_volume_size_gb" {
  type        = number
  description = "Size of the encrypted root volume, in GiB (the Nix store lives there)."
  default     = 30

  validation {
    condition     = var.root_volume_size_gb >= 20 && var.root_volume_size_gb <= 1024
    error_message = "The root volume must be 20 to 1024 GiB."
  }
}

variable "kms_key_arn" {
  type        = string
  description = "KMS key for the disk and the enrollment token secret; null creates one with yearly rotation."
  default     = null
}

variable "alarm_actions" {
  type        = list(string)
  description = "ARNs (for example SNS topics) notified when an alarm fires or recovers."
  default     = []
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource."
  default     = {}
}
