variable "a" {
  type        = string
  description = "Missing closing brace."
