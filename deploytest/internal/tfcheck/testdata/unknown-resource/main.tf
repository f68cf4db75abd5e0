resource "aws_s3_bucket" "this" {
  bucket = "ward"
}

output "arn" {
  description = "Typo in the resource name."
  value       = aws_s3_bucket.that.arn
}
