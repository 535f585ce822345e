variable "name" {
  description = "Name of the worker pool. Prefixes every resource, and is the WorkerPool dimension of the backlog metric."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name))
    error_message = "The name must be 3 to 32 characters of lower-case letters, digits and hyphens, starting with a letter and not ending with a hyphen."
  }
}

variable "bucket_name" {
  description = "Name of the store bucket to create. When null, a unique name starting with \"<name>-dspark-\" is generated."
  type        = string
  default     = null

  validation {
    condition     = var.bucket_name == null || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "The bucket name must be a valid S3 bucket name: 3 to 63 characters of lower-case letters, digits, dots and hyphens."
  }
}

variable "store_prefix" {
  description = "Key prefix of the job store inside the bucket. Workers run with --store s3://<bucket>/<store_prefix>."
  type        = string
  default     = "dspark"

  validation {
    condition     = can(regex("^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$", var.store_prefix))
    error_message = "The store prefix must be non-empty, without a leading or trailing slash, and use only letters, digits, '.', '_', '-' and '/'."
  }
}

variable "force_destroy" {
  description = "Allow terraform destroy to delete the bucket with every object in it."
  type        = bool
  default     = false
}

variable "abort_incomplete_multipart_days" {
  description = "Days after which the lifecycle rule aborts multipart uploads that were never completed (for example by a worker that was killed)."
  type        = number
  default     = 2

  validation {
    condition     = var.abort_incomplete_multipart_days >= 1 && floor(var.abort_incomplete_multipart_days) == var.abort_incomplete_multipart_days
    error_message = "abort_incomplete_multipart_days must be a whole number of at least 1."
  }
}

variable "job_expiration_days" {
  description = "When set, a lifecycle rule deletes every object under <store_prefix>/jobs/ older than this many days: the intermediate files and the coordination state of old jobs. Published outputs outside that prefix are kept. Null disables the rule; `dspark gc` is the precise alternative."
  type        = number
  default     = null

  validation {
    condition     = var.job_expiration_days == null || try(var.job_expiration_days >= 1 && floor(var.job_expiration_days) == var.job_expiration_days, false)
    error_message = "job_expiration_days must be null or a whole number of at least 1."
  }
}

variable "read_s3_uris" {
  description = "Extra S3 locations (s3://bucket or s3://bucket/prefix) that workers may read, typically the job inputs."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for uri in var.read_s3_uris : can(regex("^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$", uri))])
    error_message = "Each entry of read_s3_uris must look like s3://bucket or s3://bucket/prefix."
  }
}

variable "write_s3_uris" {
  description = "Extra S3 locations (s3://bucket or s3://bucket/prefix) that workers may read and write, typically the job outputs when they live outside the store bucket."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for uri in var.write_s3_uris : can(regex("^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$", uri))])
    error_message = "Each entry of write_s3_uris must look like s3://bucket or s3://bucket/prefix."
  }
}

variable "subnet_ids" {
  description = "Subnets the autoscaling group launches workers in. Workers need outbound access to S3 and CloudWatch (a NAT gateway or VPC endpoints) but accept no inbound connections."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) > 0
    error_message = "Give at least one subnet id."
  }
}

variable "security_group_ids" {
  description = "Security groups of the workers. Empty uses the VPC's default security group."
  type        = list(string)
  default     = []
}

variable "ami_id" {
  description = "AMI of the workers. Null selects the latest official Debian 12 image for ami_architecture. The dspark binary must be built for the same Debian release and architecture."
  type        = string
  default     = null
}

variable "ami_architecture" {
  description = "CPU architecture of the default AMI and of instance_types: amd64 or arm64."
  type        = string
  default     = "amd64"

  validation {
    condition     = contains(["amd64", "arm64"], var.ami_architecture)
    error_message = "ami_architecture must be amd64 or arm64."
  }
}

variable "instance_types" {
  description = "Instance types the group may launch, in order of preference for on-demand capacity. Spot capacity uses the price-capacity-optimized strategy across all of them."
  type        = list(string)
  default     = ["m7i.large", "m6i.large", "m5.large"]

  validation {
    condition     = length(var.instance_types) >= 1 && length(var.instance_types) <= 40
    error_message = "Give between 1 and 40 instance types."
  }
}

variable "spot_enabled" {
  description = "Launch spot instances above on_demand_base_capacity. Spot interruptions are safe: an interrupted task is retried by another worker once its lease expires."
  type        = bool
  default     = true
}

variable "on_demand_base_capacity" {
  description = "Number of instances that are always on-demand, whatever spot_enabled says."
  type        = number
  default     = 0

  validation {
    condition     = var.on_demand_base_capacity >= 0
    error_message = "on_demand_base_capacity must be 0 or more."
  }
}

variable "max_size" {
  description = "Maximum number of worker instances. This is the main cost limit."
  type        = number
  default     = 10

  validation {
    condition     = var.max_size >= 1 && var.max_size <= 1000
    error_message = "max_size must be between 1 and 1000."
  }
}

variable "worker_slots" {
  description = "Tasks each worker runs at once (dspark worker --slots). One slot per two vCPUs is a reasonable start for the CPU-bound filters."
  type        = number
  default     = 1

  validation {
    condition     = var.worker_slots >= 1 && var.worker_slots <= 64
    error_message = "worker_slots must be between 1 and 64."
  }
}

variable "idle_exit_seconds" {
  description = "Seconds without work after which a worker exits (dspark worker --idle-exit) and its instance removes itself from the group."
  type        = number
  default     = 600

  validation {
    condition     = var.idle_exit_seconds >= 30 && var.idle_exit_seconds <= 86400
    error_message = "idle_exit_seconds must be between 30 and 86400."
  }
}

variable "backlog_per_instance_target" {
  description = "Target of the scaling policy: runnable tasks per in-service instance. Lower values launch more instances for the same backlog."
  type        = number
  default     = 4

  validation {
    condition     = var.backlog_per_instance_target > 0
    error_message = "backlog_per_instance_target must be greater than 0."
  }
}

variable "metrics_namespace" {
  description = "CloudWatch namespace of the backlog metrics RunnableTasks and ActiveJobs."
  type        = string
  default     = "DSpark"

  validation {
    condition     = length(var.metrics_namespace) > 0 && !startswith(var.metrics_namespace, "AWS/")
    error_message = "metrics_namespace must be non-empty and must not start with AWS/."
  }
}

variable "metrics_interval_seconds" {
  description = "Seconds between two backlog publications by each running worker instance."
  type        = number
  default     = 60

  validation {
    condition     = var.metrics_interval_seconds >= 10 && var.metrics_interval_seconds <= 3600
    error_message = "metrics_interval_seconds must be between 10 and 3600."
  }
}

variable "dspark_binary_url" {
  description = "Where user data downloads the dspark binary: an https:// URL or an s3:// URI (read with the instance role, so add its bucket to read_s3_uris unless it is in the store bucket)."
  type        = string

  validation {
    condition     = can(regex("^(https|s3)://[^'\\s]+$", var.dspark_binary_url))
    error_message = "dspark_binary_url must start with https:// or s3:// and contain no spaces or quotes."
  }
}

variable "dspark_binary_sha256" {
  description = "Hex SHA-256 of the binary. When set, user data rejects a download with another checksum."
  type        = string
  default     = ""

  validation {
    condition     = var.dspark_binary_sha256 == "" || can(regex("^[0-9a-f]{64}$", var.dspark_binary_sha256))
    error_message = "dspark_binary_sha256 must be empty or 64 lower-case hex digits."
  }
}

variable "root_volume_gb" {
  description = "Size of each worker's root volume in GiB. Reducers spill partitions larger than memory to local disk."
  type        = number
  default     = 50

  validation {
    condition     = var.root_volume_gb >= 8
    error_message = "root_volume_gb must be at least 8."
  }
}

variable "log_level" {
  description = "DSPARK_LOG_LEVEL of the worker services: debug, info, warn or error."
  type        = string
  default     = "info"

  validation {
    condition     = contains(["debug", "info", "warn", "error"], var.log_level)
    error_message = "log_level must be debug, info, warn or error."
  }
}

variable "worker_environment" {
  description = "Extra environment variables of the worker services, for example DSPARK_RETRY_MAX_ATTEMPTS. They are stored in the launch template's user data in clear text, so never put credentials here: workers get theirs from the instance role."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k, v in var.worker_environment : can(regex("^[A-Z_][A-Z0-9_]*$", k)) && !can(regex("SECRET|TOKEN|PASSWORD", k)) && !can(regex("[\\n\"]", v))])
    error_message = "worker_environment keys must be upper-case shell names without SECRET, TOKEN or PASSWORD, and values must not contain newlines or double quotes."
  }
}

variable "tags" {
  description = "Tags added to every resource, and propagated to the worker instances."
  type        = map(string)
  default     = {}
}
