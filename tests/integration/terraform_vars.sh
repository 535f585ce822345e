#!/bin/bash
# The validation rules of terraform/aws/variables.tf, evaluated by
# Terraform itself: `terraform console` on a copy of variables.tf alone
# needs no provider, and it rejects a value that breaks a rule with the
# rule's error message. Each case gives variables as JSON, and either "ok"
# or a fragment of the expected error message. Skipped without terraform.
set -u
cd "$(dirname "$0")/../.." || exit 1
if ! command -v terraform >/dev/null; then
    echo "SKIP: terraform is not installed"
    exit 77
fi
export CHECKPOINT_DISABLE=1 TF_CLI_CONFIG_FILE=/dev/null

work=$(mktemp -d /tmp/dsp-tf-vars.XXXXXX)
trap 'rm -rf "$work"' EXIT
cp terraform/aws/variables.tf "$work/"

base='{"name": "curation", "subnet_ids": ["subnet-1"], "dspark_binary_url": "s3://artifacts/dspark"}'
failures=0

# check NAME EXPECTED OVERRIDES_JSON
check() {
    local name=$1 expected=$2 overrides=$3 out rc
    jq -n --argjson base "$base" --argjson over "$overrides" '$base + $over' >"$work/case.tfvars.json"
    out=$(cd "$work" && echo 'var.name' |
        terraform console -no-color -var-file=case.tfvars.json 2>&1)
    rc=$?
    if [ "$expected" = ok ]; then
        if [ "$rc" != 0 ] || grep -q "^Error" <<<"$out"; then
            echo "FAIL: $name: rejected: $(grep -A8 '^Error' <<<"$out")"
            failures=$((failures + 1))
        fi
    elif ! grep -q "Invalid value for variable" <<<"$out" || ! grep -q -- "$expected" <<<"$(tr '\n' ' ' <<<"$out")"; then
        echo "FAIL: $name: expected an error containing '$expected', got: $out"
        failures=$((failures + 1))
    fi
}

check "defaults" ok '{}'
check "all knobs" ok '{"bucket_name": "my-store.example", "store_prefix": "a/b", "job_expiration_days": 14,
    "read_s3_uris": ["s3://in-bucket", "s3://in-bucket/cc/2024"], "write_s3_uris": ["s3://out-bucket/x"],
    "instance_types": ["c7i.large"], "max_size": 50, "worker_slots": 4, "idle_exit_seconds": 30,
    "dspark_binary_sha256": "'"$(printf '%064d' 0)"'", "log_level": "debug",
    "worker_environment": {"DSPARK_RETRY_MAX_ATTEMPTS": "12"}}'
check "name with upper case" "lower-case letters" '{"name": "Curation"}'
check "name ending in hyphen" "not ending with a hyphen" '{"name": "curation-"}'
check "bucket name too short" "valid S3 bucket name" '{"bucket_name": "ab"}'
check "store prefix with slash" "without a leading or trailing slash" '{"store_prefix": "/dspark"}'
check "multipart days zero" "at least 1" '{"abort_incomplete_multipart_days": 0}'
check "expiration fraction" "whole number" '{"job_expiration_days": 1.5}'
check "read uri not s3" "s3://bucket or s3://bucket/prefix" '{"read_s3_uris": ["https://x/y"]}'
check "write uri bad bucket" "s3://bucket or s3://bucket/prefix" '{"write_s3_uris": ["s3://UPPER/x"]}'
check "no subnets" "at least one subnet" '{"subnet_ids": []}'
check "bad architecture" "amd64 or arm64" '{"ami_architecture": "x86"}'
check "no instance types" "between 1 and 40" '{"instance_types": []}'
check "max size zero" "between 1 and 1000" '{"max_size": 0}'
check "idle exit too short" "between 30 and 86400" '{"idle_exit_seconds": 5}'
check "zero backlog target" "greater than 0" '{"backlog_per_instance_target": 0}'
check "reserved namespace" "must not start with AWS/" '{"metrics_namespace": "AWS/EC2"}'
check "binary url http" "must start with https:// or s3://" '{"dspark_binary_url": "http://x/y"}'
check "binary url quote" "no spaces or quotes" '{"dspark_binary_url": "https://x/y'"'"'z"}'
check "sha256 upper case" "64 lower-case hex digits" '{"dspark_binary_sha256": "'"$(printf '%064d' 0 | tr 0 A)"'"}'
check "bad log level" "debug, info, warn or error" '{"log_level": "trace"}'
check "secret in environment" "without SECRET, TOKEN or PASSWORD" '{"worker_environment": {"AWS_SECRET_ACCESS_KEY": "x"}}'
check "newline in environment" "must not contain newlines" '{"worker_environment": {"X": "a\nb"}}'

if [ "$failures" != 0 ]; then
    echo "$failures validation cases failed"
    exit 1
fi
echo "terraform_vars: ok"
