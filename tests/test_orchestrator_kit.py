"""The compliance tests of ``metaflow-orchestrator-kit`` (PyPI) against
``Deployer(...).temporal()``, through ``tests/orchestrator_suites/run_suites.py`` on
its own dev server, with this project's ``kit_flows``. The conda test is deselected
(it needs conda; the generator rejects ``@conda``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.suites]

RUNNER = Path(__file__).parent / "orchestrator_suites" / "run_suites.py"
EXPECTED = {
    "test_run_params_multiple_values",
    "test_branch_propagated_to_steps",
    "test_retry_count_from_scheduler",
    "test_config_value_propagated",
    "test_nested_foreach_or_skip",
    "test_config_params_excluded_from_init",
    "test_from_deployment_dotted_name",
}


@pytest.mark.timeout(1500)
def test_the_kit_compliance_tests_pass(tmp_path):
    summary = tmp_path / "kit.json"
    done = subprocess.run(
        [sys.executable, str(RUNNER), "--suite", "kit", "--json", str(summary)],
        capture_output=True,
        text=True,
        timeout=1400,
    )
    output = done.stdout[-6000:] + done.stderr[-6000:]
    assert summary.is_file(), output
    found = json.loads(summary.read_text())
    outcomes = {
        test.rsplit("::", 1)[-1].split("[", 1)[0]: outcome
        for result in found["suites"]["kit"].values()
        for test, outcome in result["outcomes"].items()
    }
    assert {t for t, o in outcomes.items() if o == "passed"} == EXPECTED, (
        outcomes,
        output,
    )
    assert not found["leaks"], found["cleanup"]
    assert done.returncode == 0, output
