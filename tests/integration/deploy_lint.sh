#!/bin/bash
# Static checks of the deployment files that cannot run here:
# - shellcheck on examples/ci/dspark-ci.sh, on the user data rendered with
#   sample variables, and on the deployment tests themselves;
# - YAML syntax and the fields each Kubernetes, KEDA, Argo and GitHub
#   Actions document needs, checked with PyYAML (no cluster, no Argo
#   server and no GitHub runner validate them here);
# - Python syntax of the Airflow DAG (Airflow is not installed, so the DAG
#   is parsed, not imported);
# - every step of the orchestrator examples that waits or submits goes
#   through dspark-ci.sh, which ci_exit_codes.sh tests;
# - every reference in the Terraform module is declared, and every variable
#   and local is used (terraform validate needs the AWS provider).
set -u
cd "$(dirname "$0")/../.." || exit 1
command -v shellcheck >/dev/null || { echo "SKIP: shellcheck is not installed"; exit 77; }
python3 -c 'import yaml' 2>/dev/null || { echo "SKIP: python3-yaml is not installed"; exit 77; }

work=$(mktemp -d /tmp/dsp-deploy-lint.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail=0

cat >"$work/vars.json" <<'JSON'
{"store_uri": "s3://bucket/dspark", "idle_exit_seconds": 600, "worker_slots": 2,
 "binary_url": "s3://artifacts/dspark", "binary_sha256": "", "pool_name": "pool",
 "metrics_namespace": "DSpark", "metrics_interval_seconds": 60, "region": "eu-west-1",
 "log_level": "info", "environment_lines": ""}
JSON
python3 tests/integration/deploy_lib/render_template.py terraform/aws/user_data.sh.tftpl \
    "$work/vars.json" >"$work/user-data.sh" || { echo "FAIL: rendering the user data"; fail=1; }

# SC1091: the tests source job_lib/common.bash, which is not checked here.
shellcheck -e SC1091 "$work/user-data.sh" examples/ci/dspark-ci.sh tests/integration/deploy_userdata.sh \
    tests/integration/cloudwatch_metric.sh tests/integration/ci_exit_codes.sh \
    tests/integration/terraform_fmt.sh tests/integration/terraform_vars.sh \
    tests/integration/deploy_lint.sh ||
    { echo "FAIL: shellcheck"; fail=1; }

python3 - <<'PY' || fail=1
import ast
import sys

import yaml

failures = []


def check(cond, message):
    if not cond:
        failures.append(message)


def load_all(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


# Kubernetes workers.
docs = {d["kind"]: d for d in load_all("examples/kubernetes/dspark-workers.yaml")}
check(set(docs) >= {"ServiceAccount", "Deployment"}, "dspark-workers.yaml: kinds %s" % sorted(docs))
dep = docs.get("Deployment", {})
check(dep.get("apiVersion") == "apps/v1", "Deployment apiVersion is not apps/v1")
pod = dep.get("spec", {}).get("template", {}).get("spec", {})
labels = dep.get("spec", {}).get("template", {}).get("metadata", {}).get("labels", {})
selector = dep.get("spec", {}).get("selector", {}).get("matchLabels", {})
check(selector and all(labels.get(k) == v for k, v in selector.items()),
      "Deployment selector does not match the pod labels")
containers = pod.get("containers", [])
check(len(containers) == 1, "Deployment should have one container")
worker = containers[0] if containers else {}
check(worker.get("args", [None])[0] == "worker", "container does not run 'dspark worker'")
check("--idle-exit" not in worker.get("args", []), "a Deployment must not use --idle-exit")
requests = worker.get("resources", {}).get("requests", {})
check("cpu" in requests and "memory" in requests, "container lacks cpu and memory requests")
check(pod.get("serviceAccountName") == docs.get("ServiceAccount", {}).get("metadata", {}).get("name"),
      "pod does not use the ServiceAccount of the manifest")
check(any("secretRef" in e for e in worker.get("envFrom", [])), "container takes no Secret")

# KEDA.
keda = {d["kind"]: d for d in load_all("examples/kubernetes/keda-scaledobject.yaml")}
so = keda.get("ScaledObject", {})
check(so.get("spec", {}).get("scaleTargetRef", {}).get("name") == dep.get("metadata", {}).get("name"),
      "ScaledObject does not target the worker Deployment")
check(so.get("spec", {}).get("minReplicaCount") == 0, "ScaledObject does not scale to zero")
trigger = (so.get("spec", {}).get("triggers") or [{}])[0]
meta = trigger.get("metadata", {})
check(trigger.get("type") == "aws-cloudwatch", "ScaledObject trigger is not aws-cloudwatch")
check(meta.get("metricName") == "RunnableTasks" and meta.get("namespace") == "DSpark",
      "ScaledObject does not read DSpark/RunnableTasks")
check(all(isinstance(v, str) for v in meta.values()), "KEDA trigger metadata values must be strings")

# Terraform references, since terraform validate cannot run here: every
# var., local., data. and resource reference is declared, and every
# variable and local is used.
import glob
import re

tf = "\n".join(open(f).read() for f in sorted(glob.glob("terraform/aws/*.tf")))
variables = set(re.findall(r'^variable "(\w+)"', tf, re.M))
used_vars = set(re.findall(r"\bvar\.(\w+)", tf))
check(used_vars <= variables, "undeclared variables: %s" % sorted(used_vars - variables))
check(variables <= used_vars, "unused variables: %s" % sorted(variables - used_vars))
local_names = set()
for block in re.findall(r"^locals \{\n(.*?)^\}", tf, re.M | re.S):
    local_names |= set(re.findall(r"^  (\w+)\s*=", block, re.M))
used_locals = set(re.findall(r"\blocal\.(\w+)", tf))
check(used_locals <= local_names, "undeclared locals: %s" % sorted(used_locals - local_names))
check(local_names <= used_locals, "unused locals: %s" % sorted(local_names - used_locals))
data_sources = set(re.findall(r'^data "(\w+)" "(\w+)"', tf, re.M))
used_data = set(re.findall(r"\bdata\.(\w+)\.(\w+)", tf))
check(used_data <= data_sources, "undeclared data sources: %s" % sorted(used_data - data_sources))
resources = set(re.findall(r'^resource "(\w+)" "(\w+)"', tf, re.M))
body = re.sub(r"^(resource|data) .*$", "", tf, flags=re.M)
used_resources = set(re.findall(r"(?<![\w.])(aws_\w+)\.(\w+)", body))
check(used_resources <= resources, "undeclared resources: %s" % sorted(used_resources - resources))

# Argo.
(wf,) = load_all("examples/ci/argo-workflow.yaml")
check(wf.get("kind") == "Workflow" and wf.get("apiVersion") == "argoproj.io/v1alpha1",
      "argo-workflow.yaml is not an Argo Workflow")
templates = {t["name"]: t for t in wf.get("spec", {}).get("templates", [])}
check(wf.get("spec", {}).get("entrypoint") in templates, "Argo entrypoint is not a template")
for name in ("submit", "wait"):
    c = templates.get(name, {}).get("container", {})
    text = " ".join(map(str, c.get("command", []) + c.get("args", [])))
    check("dspark-ci.sh %s" % name in text or ("dspark-ci.sh" in text and name in c.get("args", [])),
          "Argo step %s does not run dspark-ci.sh %s" % (name, name))

# GitHub Actions ("on" is read as True by YAML 1.1 loaders).
(gh,) = load_all("examples/ci/github-actions.yml")
check(True in gh or "on" in gh, "workflow has no trigger")
steps = [s for job in gh.get("jobs", {}).values() for s in job.get("steps", [])]
runs = [s.get("run", "") for s in steps]
check(any("dspark-ci.sh submit" in r for r in runs), "workflow does not submit with dspark-ci.sh")
check(any("dspark-ci.sh wait" in r for r in runs), "workflow does not wait with dspark-ci.sh")
check(not any(("dspark submit" in r or "dspark wait" in r) for r in runs),
      "workflow calls dspark submit/wait directly instead of dspark-ci.sh")
check(any("127.0.0.1:9000" in r for r in runs), "workflow does not bind the S3 server to loopback")

# Airflow.
with open("examples/ci/airflow_dspark_dag.py") as f:
    tree = ast.parse(f.read(), "airflow_dspark_dag.py")
source = ast.unparse(tree)
check("dspark-ci.sh" in source or "CI_SCRIPT" in source, "DAG does not use dspark-ci.sh")
check("skip_on_exit_code=3" in source, "DAG does not map the cancelled exit code")

for msg in failures:
    print("FAIL:", msg)
sys.exit(1 if failures else 0)
PY

[ "$fail" = 0 ] || exit 1
echo "deploy_lint: ok"
