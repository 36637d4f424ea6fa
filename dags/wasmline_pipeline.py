"""Wasmline's pipeline as an Airflow 3 DAG: one task per step, each `wasmline pipeline step NAME`.

The steps are idempotent and content-addressed, so a task that is retried, or a DAG run that is
cleared and run again after a failure, redoes nothing that finished: every finished step is a no-op
("up to date") and the run resumes at the step that failed.

Where things are (an Airflow Variable wins over the worker's environment, which wins over the default):

    Variable / env     default                              what
    WASMLINE_BIN       `wasmline` on PATH                   the binary
    WASMLINE_STORE     $AIRFLOW_HOME/wasmline-data          the store: a directory or s3://bucket/prefix
    WASMLINE_CONFIG    the bundled wine-quality example     pipeline.toml

The run id is the DAG run's `conf` `{"run_id": "..."}` when given (to resume a run), otherwise one
made from Airflow's run id; the `ingest` task prints it last, so it is its XCom, and every later task
pulls it from there. Retries (WASMLINE_DAG_RETRIES, default 2, with a delay of
WASMLINE_DAG_RETRY_DELAY_SECONDS, default 300, doubling) cover transient failures such as an S3
endpoint or MLflow being briefly away.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

STEPS = [
    "ingest",
    "transform",
    "validate",
    "profile",
    "version",
    "train",
    "evaluate",
    "export",
    "compile",
    "register",
    "compare",
]

# The Variables, rendered when a task runs; empty when unset, and then the task's environment or
# the default applies (see `_PREAMBLE`).
_ENV = {
    "WASMLINE_VARIABLE_BIN": "{{ var.value.get('WASMLINE_BIN', '') }}",
    "WASMLINE_VARIABLE_STORE": "{{ var.value.get('WASMLINE_STORE', '') }}",
    "WASMLINE_VARIABLE_CONFIG": "{{ var.value.get('WASMLINE_CONFIG', '') }}",
    "WASMLINE_AIRFLOW_RUN_ID": "{{ run_id }}",
    "WASMLINE_CONF_RUN_ID": "{{ (dag_run.conf or {}).get('run_id', '') }}",
    "WASMLINE_INGEST_RUN_ID": "{{ ti.xcom_pull(task_ids='ingest') or '' }}",
}

_PREAMBLE = r"""
set -euo pipefail
bin=${WASMLINE_VARIABLE_BIN:-${WASMLINE_BIN:-wasmline}}
export WASMLINE_STORE=${WASMLINE_VARIABLE_STORE:-${WASMLINE_STORE:-${AIRFLOW_HOME:-$HOME/airflow}/wasmline-data}}
config=${WASMLINE_VARIABLE_CONFIG:-${WASMLINE_CONFIG:-}}
args=()
if [ -n "$config" ]; then args+=(--config "$config"); fi
"""

# ingest starts the run: the run id is the conf's, or Airflow's made safe for a store key.
_INGEST = r"""
run=$WASMLINE_CONF_RUN_ID
if [ -z "$run" ]; then
  run=airflow-$(printf '%s' "$WASMLINE_AIRFLOW_RUN_ID" | tr -c 'A-Za-z0-9_.-' '-')
fi
"$bin" pipeline step ingest --run-id "$run" "${args[@]}"
echo "$run"
"""

# Every later step continues the run ingest started.
_STEP = r"""
run=$WASMLINE_INGEST_RUN_ID
if [ -z "$run" ]; then echo "no run id from the ingest task" >&2; exit 1; fi
"$bin" pipeline step {step} --run-id "$run" "${{args[@]}}"
"""


def _command(step: str) -> str:
    body = _INGEST if step == "ingest" else _STEP.format(step=step)
    return _PREAMBLE + body


with DAG(
    dag_id="wasmline_pipeline",
    description="Wasmline: ingest, check, version, train, export, compile, register and promote a model",
    doc_md=__doc__,
    schedule="@weekly",
    start_date=datetime(2026, 1, 5),
    catchup=False,
    max_active_runs=1,
    tags=["wasmline", "mlops"],
    default_args={
        "retries": int(os.environ.get("WASMLINE_DAG_RETRIES", "2")),
        "retry_delay": timedelta(seconds=int(os.environ.get("WASMLINE_DAG_RETRY_DELAY_SECONDS", "300"))),
        "retry_exponential_backoff": True,
    },
) as dag:
    previous = None
    for step in STEPS:
        task = BashOperator(
            task_id=step,
            bash_command=_command(step),
            env=_ENV,
            append_env=True,
            # Only ingest's last line (the run id) is worth keeping.
            do_xcom_push=step == "ingest",
        )
        if previous is not None:
            previous >> task
        previous = task
