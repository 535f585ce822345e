"""Airflow DAG that submits a DSpark job and waits for it.

Both tasks call examples/ci/dspark-ci.sh (install it next to dspark on the
workers, as /opt/dspark/dspark-ci.sh here). The submit task pushes the job
id to XCom. Retrying it is safe because submit is idempotent: the same spec
names the same job. The wait task maps the exit codes of `dspark wait`:

    0  done       task succeeds
    1  failed     task fails; the log lists the task errors
    3  cancelled  task is skipped (skip_on_exit_code), so downstream tasks
                  do not run but the run is not marked failed
    4  timeout    task fails and is retried; each retry waits again, and
                  the job keeps running in the meantime
    5  not found  task fails

Needs Airflow 2.6 or later for skip_on_exit_code.
"""
from datetime import datetime, timedelta

from airflow import DAG
from airflow.operators.bash import BashOperator

CI_SCRIPT = "/opt/dspark/dspark-ci.sh"
ENV = {
    "DSPARK_STORE": "s3://my-dspark-store/dspark",
    "DSPARK_METRIC_POOL": "curation",  # scale the worker pool out from zero
    "DSPARK_LOG_FORMAT": "json",
}

with DAG(
    dag_id="dspark_cc_clean",
    start_date=datetime(2024, 1, 1),
    schedule=None,
    catchup=False,
    tags=["dspark"],
) as dag:
    submit = BashOperator(
        task_id="submit",
        bash_command=f"{CI_SCRIPT} submit /opt/dspark/jobs/cc-clean.json",
        env=ENV,
        append_env=True,
        do_xcom_push=True,  # the last line of output is the job id
        retries=3,
        retry_delay=timedelta(minutes=1),
    )

    wait = BashOperator(
        task_id="wait",
        bash_command=(
            f"{CI_SCRIPT} wait "
            "{{ ti.xcom_pull(task_ids='submit') }} 3600"
        ),
        env=ENV,
        append_env=True,
        skip_on_exit_code=3,
        retries=3,
        retry_delay=timedelta(seconds=30),
        execution_timeout=timedelta(hours=2),
    )

    submit >> wait
