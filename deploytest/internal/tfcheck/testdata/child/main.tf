variable "name" {
  type        = string
  description = "Name of the thing."
}

variable "size" {
  type        = number
  description = "Size of the thing."
  default     = 1
}

resource "aws_s3_bucket" "this" {
  bucket = "${var.name}-${var.size}"
}

output "id" {
  description = "The bucket's id."
  value       = aws_s3_bucket.this.id
}
