"""The numbers generated code and the runtime share equal Metaflow's own, and a
module written for another runtime API is refused when it is imported."""

from __future__ import annotations

import pytest
from metaflow import metaflow_config
from metaflow.plugins.catch_decorator import NUM_FALLBACK_RETRIES
from metaflow.plugins.retry_decorator import RetryDecorator

from mf_temporal_codegen import contract, runtime


def test_metaflow_constants_match_metaflow():
    assert contract.MAX_ATTEMPTS == metaflow_config.MAX_ATTEMPTS
    assert contract.CATCH_ERROR_RETRIES == NUM_FALLBACK_RETRIES
    defaults = RetryDecorator.defaults
    assert (contract.RETRY_TIMES, contract.RETRY_MINUTES) == (
        int(defaults["times"]),
        int(defaults["minutes_between_retries"]),
    )


def test_runtime_refuses_a_module_for_another_api():
    runtime.require_api(contract.RUNTIME_API)
    with pytest.raises(runtime.RuntimeMismatch, match="generated for runtime API 1"):
        runtime.require_api(1)


def test_task_queue_names():
    assert contract.task_queue("proj.prod.Flow") == "metaflow-proj.prod.Flow"


def test_worker_of_a_module_for_another_api_exits_2_in_one_line(tmp_path):
    import subprocess
    import sys

    from helpers import EXAMPLES, generate_into

    generate_into(EXAMPLES / "hello.py", tmp_path / "out")
    module = tmp_path / "out" / "hello_flow_workflow.py"
    module.write_text(
        module.read_text().replace(
            f"RUNTIME_API = {contract.RUNTIME_API}\n", "RUNTIME_API = 1\n"
        )
    )
    done = subprocess.run(
        [sys.executable, "-m", "out.hello_flow_worker", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "error: this module was generated for runtime API 1, the installed "
        f"mf-temporal-codegen provides {contract.RUNTIME_API}: regenerate it with the "
        "installed version (its REGENERATE command), or install the version that "
        "generated it"
    ]


def test_metaflow_option_defaults_are_metaflows(tmp_path):
    """With nothing configured (no METAFLOW_* variables, no config files) Metaflow's
    settings are the defaults ``contract.METAFLOW_OPTIONS`` falls back to."""
    import json
    import os
    import subprocess
    import sys

    names = [name for name, _ in contract.METAFLOW_OPTIONS.values()]
    env = {k: v for k, v in os.environ.items() if not k.startswith("METAFLOW_")}
    env["METAFLOW_HOME"] = str(tmp_path / "home")
    found = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, sys; from metaflow import metaflow_config as c; "
            "print(json.dumps([getattr(c, n) for n in sys.argv[1:]]))",
            *names,
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    defaults = [default for _, default in contract.METAFLOW_OPTIONS.values()]
    assert json.loads(found.stdout) == defaults
