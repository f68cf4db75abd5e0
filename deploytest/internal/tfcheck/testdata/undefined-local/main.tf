locals {
  prefix = "ward"
}

resource "aws_s3_bucket" "this" {
  bucket = "${local.prefix}-${local.suffix}"
}
