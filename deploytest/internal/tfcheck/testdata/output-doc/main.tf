output "a" {
  value = "no description"
}
