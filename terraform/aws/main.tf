# The store bucket: private, encrypted at rest, TLS only, with lifecycle
# rules that clean up after crashed writers and, optionally, old jobs.

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  store_uri   = "s3://${aws_s3_bucket.store.id}/${var.store_prefix}"
  group_name  = "${var.name}-workers"
  common_tags = merge(var.tags, { "dspark:pool" = var.name })
}

resource "aws_s3_bucket" "store" {
  bucket        = var.bucket_name
  bucket_prefix = var.bucket_name == null ? "${var.name}-dspark-" : null
  force_destroy = var.force_destroy
  tags          = local.common_tags
}

resource "aws_s3_bucket_public_access_block" "store" {
  bucket                  = aws_s3_bucket.store.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "store" {
  bucket = aws_s3_bucket.store.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "store" {
  bucket = aws_s3_bucket.store.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "store" {
  bucket = aws_s3_bucket.store.id

  rule {
    id     = "abort-incomplete-multipart-uploads"
    status = "Enabled"

    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = var.abort_incomplete_multipart_days
    }
  }

  dynamic "rule" {
    for_each = var.job_expiration_days == null ? [] : [var.job_expiration_days]

    content {
      id     = "expire-old-jobs"
      status = "Enabled"

      filter {
        prefix = "${var.store_prefix}/jobs/"
      }

      expiration {
        days = rule.value
      }
    }
  }
}

data "aws_iam_policy_document" "store_bucket" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.store.arn, "${aws_s3_bucket.store.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "store" {
  bucket = aws_s3_bucket.store.id
  policy = data.aws_iam_policy_document.store_bucket.json

  depends_on = [aws_s3_bucket_public_access_block.store]
}
