#!/bin/bash
# `terraform fmt -check` on the Terraform module. Needs a terraform binary
# on PATH (not a Debian package, so scripts/install-deps.sh cannot install
# it); skipped without one. fmt parses every file, so a syntax error fails
# here too. `terraform validate` is not run: it needs the AWS provider,
# which cannot be downloaded on the build machines.
set -u
cd "$(dirname "$0")/../.." || exit 1

if ! command -v terraform >/dev/null; then
    echo "SKIP: terraform is not installed, so terraform fmt -check cannot run"
    exit 77
fi
# No update check and no CLI configuration: the check needs no network.
export CHECKPOINT_DISABLE=1 TF_CLI_CONFIG_FILE=/dev/null

if ! terraform fmt -check -recursive -diff terraform/ 2>&1; then
    echo "FAIL: terraform fmt -check found files to reformat (run: terraform fmt -recursive terraform/)"
    exit 1
fi

# The check itself must catch a badly formatted file.
probe=$(mktemp -d /tmp/dsp-tf-fmt.XXXXXX)
trap 'rm -rf "$probe"' EXIT
printf 'variable "x" {\ndefault = 1\n  type=number\n}\n' >"$probe/bad.tf"
if terraform fmt -check "$probe" >/dev/null 2>&1; then
    echo "FAIL: terraform fmt -check accepted a badly formatted file"
    exit 1
fi
echo "terraform_fmt: ok ($(terraform version 2>/dev/null | head -n 1))"
