variable "a" {
  description = "No type."
}
