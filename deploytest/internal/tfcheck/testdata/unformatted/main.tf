variable "a" {
  type = string
  description = "Misaligned equals signs."
}
