# The worker pool: a launch template whose user data installs and starts
# dspark, an autoscaling group from 0 to max_size over a list of instance
# types with spot allowed, and a target tracking policy on the backlog.

data "aws_ami" "debian12" {
  count       = var.ami_id == null ? 1 : 0
  most_recent = true
  owners      = ["136693071363"] # Debian's official AWS account

  filter {
    name   = "name"
    values = ["debian-12-${var.ami_architecture}-*"]
  }
}

locals {
  worker_environment_lines = join("\n", [for k in sort(keys(var.worker_environment)) : "Environment=${k}=${var.worker_environment[k]}"])

  user_data = templatefile("${path.module}/user_data.sh.tftpl", {
    store_uri                = local.store_uri
    idle_exit_seconds        = var.idle_exit_seconds
    worker_slots             = var.worker_slots
    binary_url               = var.dspark_binary_url
    binary_sha256            = var.dspark_binary_sha256
    pool_name                = var.name
    metrics_namespace        = var.metrics_namespace
    metrics_interval_seconds = var.metrics_interval_seconds
    region                   = data.aws_region.current.name
    log_level                = var.log_level
    environment_lines        = local.worker_environment_lines
  })
}

resource "aws_launch_template" "worker" {
  name_prefix            = "${var.name}-worker-"
  image_id               = var.ami_id != null ? var.ami_id : data.aws_ami.debian12[0].id
  user_data              = base64encode(local.user_data)
  vpc_security_group_ids = length(var.security_group_ids) > 0 ? var.security_group_ids : null
  update_default_version = true

  iam_instance_profile {
    arn = aws_iam_instance_profile.worker.arn
  }

  # IMDSv2 only; the hop limit of 1 keeps containers on the host away from
  # the role credentials.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  block_device_mappings {
    device_name = "/dev/xvda"

    ebs {
      volume_size           = var.root_volume_gb
      volume_type           = "gp3"
      encrypted             = true
      delete_on_termination = true
    }
  }

  tag_specifications {
    resource_type = "instance"
    tags          = merge(local.common_tags, { Name = "${var.name}-worker" })
  }

  tag_specifications {
    resource_type = "volume"
    tags          = local.common_tags
  }

  tags = local.common_tags
}

resource "aws_autoscaling_group" "workers" {
  name                = local.group_name
  min_size            = 0
  max_size            = var.max_size
  vpc_zone_identifier = var.subnet_ids
  capacity_rebalance  = var.spot_enabled

  # desired_capacity is left to the scaling policy and the idle hook.
  # GroupInServiceInstances feeds the backlog-per-instance expression.
  enabled_metrics = ["GroupInServiceInstances", "GroupDesiredCapacity"]

  mixed_instances_policy {
    instances_distribution {
      on_demand_allocation_strategy            = "prioritized"
      on_demand_base_capacity                  = var.on_demand_base_capacity
      on_demand_percentage_above_base_capacity = var.spot_enabled ? 0 : 100
      spot_allocation_strategy                 = "price-capacity-optimized"
    }

    launch_template {
      launch_template_specification {
        launch_template_id = aws_launch_template.worker.id
        version            = "$Latest"
      }

      dynamic "override" {
        for_each = var.instance_types

        content {
          instance_type = override.value
        }
      }
    }
  }

  dynamic "tag" {
    for_each = local.common_tags

    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = true
    }
  }

  lifecycle {
    ignore_changes = [desired_capacity]
  }
}

# Scale out on runnable tasks per in-service instance. Scale-in is left to
# the workers: an idle worker exits after idle_exit_seconds and its instance
# terminates itself with a lower desired capacity, so the policy never stops
# an instance in the middle of a task.
resource "aws_autoscaling_policy" "backlog" {
  name                   = "${var.name}-backlog-per-instance"
  autoscaling_group_name = aws_autoscaling_group.workers.name
  policy_type            = "TargetTrackingScaling"

  target_tracking_configuration {
    target_value     = var.backlog_per_instance_target
    disable_scale_in = true

    customized_metric_specification {
      metrics {
        id          = "backlog"
        label       = "Runnable DSpark tasks"
        return_data = false

        metric_stat {
          stat = "Average"

          metric {
            namespace   = var.metrics_namespace
            metric_name = "RunnableTasks"

            dimensions {
              name  = "WorkerPool"
              value = var.name
            }
          }
        }
      }

      metrics {
        id          = "instances"
        label       = "In-service instances"
        return_data = false

        metric_stat {
          stat = "Average"

          metric {
            namespace   = "AWS/AutoScaling"
            metric_name = "GroupInServiceInstances"

            dimensions {
              name  = "AutoScalingGroupName"
              value = aws_autoscaling_group.workers.name
            }
          }
        }
      }

      # With no instance in service, the whole backlog counts for one
      # instance, so the group scales out from zero.
      metrics {
        id          = "backlog_per_instance"
        label       = "Runnable tasks per in-service instance"
        expression  = "IF(instances > 0, backlog / instances, backlog)"
        return_data = true
      }
    }
  }
}
