output "bucket_name" {
  description = "Name of the store bucket."
  value       = aws_s3_bucket.store.id
}

output "bucket_arn" {
  description = "ARN of the store bucket."
  value       = aws_s3_bucket.store.arn
}

output "store_uri" {
  description = "The --store URI for dspark submit, status, wait and metrics."
  value       = local.store_uri
}

output "autoscaling_group_name" {
  description = "Name of the workers' autoscaling group."
  value       = aws_autoscaling_group.workers.name
}

output "worker_role_name" {
  description = "Name of the workers' IAM role, for attaching more policies (for example SSM access)."
  value       = aws_iam_role.worker.name
}

output "launch_template_id" {
  description = "ID of the workers' launch template."
  value       = aws_launch_template.worker.id
}

output "backlog_metric" {
  description = "The CloudWatch metric the group scales on, and the dspark command that publishes it from outside the pool (needed to scale out from zero)."
  value = {
    namespace   = var.metrics_namespace
    metric_name = "RunnableTasks"
    dimensions  = { WorkerPool = var.name }
    publish     = "dspark metrics publish --store ${local.store_uri} --namespace ${var.metrics_namespace} --dimension WorkerPool=${var.name}"
  }
}
