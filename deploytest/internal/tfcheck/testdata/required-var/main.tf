variable "a" {
  type        = string
  description = "Required in disguise."
  default     = null
  nullable    = false
}
