module "child" {
  source = "../child"
  name   = "x"
}

output "arn" {
  description = "The child has no output arn."
  value       = module.child.arn
}
