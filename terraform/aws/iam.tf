# The workers' role: exactly what `dspark worker` and `dspark metrics
# publish` need, on the store prefix and the extra locations given.

locals {
  # s3://bucket/prefix -> {bucket, prefix}; prefix "" means the whole bucket.
  extra_read = [for uri in var.read_s3_uris : {
    bucket = regex("^s3://([^/]+)/?(.*)$", uri)[0]
    prefix = trimsuffix(regex("^s3://([^/]+)/?(.*)$", uri)[1], "/")
  }]
  extra_write = [for uri in var.write_s3_uris : {
    bucket = regex("^s3://([^/]+)/?(.*)$", uri)[0]
    prefix = trimsuffix(regex("^s3://([^/]+)/?(.*)$", uri)[1], "/")
  }]
  store_location = { bucket = aws_s3_bucket.store.id, prefix = var.store_prefix }
  read_locations = concat(local.extra_read, local.extra_write, [local.store_location])
  s3_arn         = "arn:${data.aws_partition.current.partition}:s3:::"
  group_arn      = "arn:${data.aws_partition.current.partition}:autoscaling:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:autoScalingGroup:*:autoScalingGroupName/${local.group_name}"
}

data "aws_iam_policy_document" "assume_ec2" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "worker" {
  # Listing is granted per prefix through the s3:prefix condition.
  dynamic "statement" {
    for_each = local.read_locations

    content {
      sid       = "List${statement.key}"
      actions   = ["s3:ListBucket"]
      resources = ["${local.s3_arn}${statement.value.bucket}"]

      dynamic "condition" {
        for_each = statement.value.prefix == "" ? [] : [statement.value.prefix]

        content {
          test     = "StringLike"
          variable = "s3:prefix"
          values   = [condition.value, "${condition.value}/*"]
        }
      }
    }
  }

  statement {
    sid       = "ReadObjects"
    actions   = ["s3:GetObject"]
    resources = [for loc in local.read_locations : loc.prefix == "" ? "${local.s3_arn}${loc.bucket}/*" : "${local.s3_arn}${loc.bucket}/${loc.prefix}/*"]
  }

  # Conditional PutObject (If-None-Match, If-Match) needs no extra action.
  statement {
    sid     = "WriteObjects"
    actions = ["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]
    resources = [for loc in concat(local.extra_write, [local.store_location]) :
    loc.prefix == "" ? "${local.s3_arn}${loc.bucket}/*" : "${local.s3_arn}${loc.bucket}/${loc.prefix}/*"]
  }

  statement {
    sid       = "PublishBacklog"
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = [var.metrics_namespace]
    }
  }

  # The idle hook removes its own instance and lowers the desired capacity.
  statement {
    sid       = "LeaveGroupWhenIdle"
    actions   = ["autoscaling:TerminateInstanceInAutoScalingGroup"]
    resources = [local.group_arn]
  }
}

resource "aws_iam_role" "worker" {
  name_prefix        = "${var.name}-worker-"
  assume_role_policy = data.aws_iam_policy_document.assume_ec2.json
  tags               = local.common_tags
}

resource "aws_iam_role_policy" "worker" {
  name   = "dspark-worker"
  role   = aws_iam_role.worker.id
  policy = data.aws_iam_policy_document.worker.json
}

resource "aws_iam_instance_profile" "worker" {
  name_prefix = "${var.name}-worker-"
  role        = aws_iam_role.worker.name
  tags        = local.common_tags
}
