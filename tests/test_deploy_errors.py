"""Bad @schedule / @project use and bad --branch/--production options are rejected at
generation time through the real CLI: position, message, hint, exit 2, nothing written.

Where Metaflow rejects the same flow locally (``python flow.py [OPTIONS] check``),
``test_metaflow_rejects_too`` shows it; the other rules are ones Metaflow applies only
when deploying to a scheduler (or ones where its schedulers disagree), said in ``why``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import codegen, metaflow_check

from mf_temporal_codegen import cron

ROOT = Path(__file__).resolve().parent.parent
BAD = Path("tests") / "bad_inputs"


@dataclass(frozen=True)
class Case:
    id: str
    file: str
    args: tuple[str, ...]
    where: str
    message: str
    # what `python <file> <args> check` prints when Metaflow rejects the flow too
    metaflow: str | None
    why: str = ""


AT_DEPLOY = "Metaflow accepts it locally; it fails only when deployed"
CASES = [
    Case(
        "numeric_day",
        "schedule_numeric_day.py",
        (),
        "4:16",
        "cron day-of-week field: numeric day '2' is ambiguous",
        None,
        AT_DEPLOY + ", as Monday on Step Functions and Tuesday on Argo",
    ),
    Case(
        "cron_fields",
        "schedule_fields.py",
        (),
        "4:16",
        "cron expression '0 12 * *' has 4 fields, expected 6 (or 5 without the year)",
        None,
        AT_DEPLOY + " (EventBridge and Argo both refuse 4 fields)",
    ),
    Case(
        "last_day",
        "schedule_last_day.py",
        (),
        "4:32",
        "cron day-of-month field: 'L' uses L, W or #",
        None,
        AT_DEPLOY + " to Argo; Temporal calendars have no L either",
    ),
    Case(
        "required_param",
        "schedule_required_param.py",
        (),
        "7:12",
        "Parameter 'date' is required and has no default, so a scheduled run cannot set it",
        None,
        AT_DEPLOY + " (argo-workflows create refuses it)",
    ),
    Case(
        "timezone",
        "schedule_timezone.py",
        (),
        "4:33",
        "unknown time zone 'Mars/Olympus_Mons' in @schedule(timezone=)",
        None,
        AT_DEPLOY + " (the CronWorkflow is rejected)",
    ),
    Case(
        "schedule_attribute",
        "schedule_attribute.py",
        (),
        "4:30",
        "@schedule does not support the attribute 'every'",
        "Decorator 'schedule' does not support the attribute 'every'.",
    ),
    Case(
        "project_name",
        "project_name.py",
        (),
        "4:15",
        "The @project name must contain only lowercase alphanumeric characters and "
        "underscores, got 'My-Project'",
        "The @project name must contain only lowercase alphanumeric characters and underscores.",
    ),
    Case(
        "project_no_name",
        "project_no_name.py",
        (),
        "4:1",
        "@project needs a name",
        "@project needs a name.",
    ),
    Case(
        "project_branch",
        "project_branch.py",
        (),
        "4:30",
        "The branch name must contain only lowercase alphanumeric characters and "
        "underscores, got 'Feature-1'",
        "The branch name must contain only lowercase alphanumeric characters and underscores.",
    ),
    Case(
        "cli_branch_name",
        "project_plain.py",
        ("--production", "--branch=Bad"),
        "4:1",
        "The --branch value must contain only lowercase alphanumeric characters and "
        "underscores, got 'Bad'",
        "The branch name must contain only lowercase alphanumeric characters and underscores.",
    ),
    Case(
        "cli_branch_conflict",
        "project_ok.py",
        ("--branch=other",),
        "4:1",
        "branch is given both as --branch and as @project(branch=)",
        "You cannot pass branch as both a command-line argument and an attribute of the "
        "@project decorator.",
    ),
    Case(
        "branch_without_project",
        "good.py",
        ("--branch=x",),
        "4:7",
        "--branch is given but flow GoodFlow has no @project",
        "no such option: --branch",
    ),
    Case(
        "production_without_project",
        "good.py",
        ("--production",),
        "4:7",
        "--production is given but flow GoodFlow has no @project",
        "no such option: --production",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_rejected_with_position_and_hint(case: Case, tmp_path: Path):
    out = tmp_path / "out"
    result = codegen(BAD / case.file, "-o", out, *case.args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert (
        lines[0]
        == f"{(BAD / case.file).as_posix()}:{case.where}: error: {case.message}"
    )
    assert len(lines) >= 2 and lines[1].startswith("  hint: "), result.stderr
    assert result.stdout == ""
    assert not out.exists()


@pytest.mark.parametrize("case", [c for c in CASES if c.metaflow], ids=lambda c: c.id)
def test_metaflow_rejects_too(case: Case, tmp_path: Path):
    result = metaflow_check(BAD / case.file, tmp_path, *case.args)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert case.metaflow in " ".join(output.split()), output


@pytest.mark.parametrize(
    "case", [c for c in CASES if not c.metaflow], ids=lambda c: c.id
)
def test_metaflow_accepts_locally(case: Case, tmp_path: Path):
    """The deploy-time rules: `check` passes, so only deploying would catch them."""
    result = metaflow_check(BAD / case.file, tmp_path, *case.args)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "args, branch",
    [
        ((), None),
        (("--branch=feature",), "test.feature"),
        (("--production",), "prod.feature"),
    ],
)
def test_decorator_branch_with_agreeing_options(args, branch, tmp_path: Path):
    """@project(branch="feature") with no flag, the same --branch, or --production."""
    result = codegen(BAD / "project_ok.py", "-o", tmp_path, *args)
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "project_ok_flow_workflow.py").read_text()
    branch = branch or "test.feature"
    assert f'PROJECT = rt.Project("demo", branch="{branch}")' in text
    assert f'TASK_QUEUE = "metaflow-demo.{branch}.ProjectOkFlow"' in text


@pytest.mark.parametrize(
    "expression, field, ranges",
    [
        ("0 * * * ? *", "hour", ((0, 23, 1),)),
        ("0 0 * * ? *", "hour", ((0, 0, 1),)),
        ("0 0 ? * SUN *", "day_of_week", ((0, 0, 1),)),
        ("*/15 9-17 ? * MON-FRI *", "minute", ((0, 59, 15),)),
        ("*/15 9-17 ? * MON-FRI *", "day_of_week", ((1, 5, 1),)),
        ("5/20 * * * ?", "minute", ((5, 59, 20),)),
        ("0 0 1 jan,JUL ? 2030-2032", "month", ((1, 1, 1), (7, 7, 1))),
        ("0 0 1 jan,JUL ? 2030-2032", "year", ((2030, 2032, 1),)),
        ("0 0 * * ? *", "year", ()),
        ("0 0 ? * SAT,SUN", "day_of_week", ((6, 6, 1), (0, 0, 1))),
    ],
)
def test_cron_ranges(expression, field, ranges):
    assert getattr(cron.parse(expression), field) == ranges


@pytest.mark.parametrize(
    "expression, field",
    [
        ("0 0 1 * MON *", 4),
        ("0 ? * * ? *", 1),
        ("0 0 ? * FRI-MON *", 4),
        ("0 0 ? * MON#2 *", 4),
        ("0 0 15W * ? *", 2),
        ("60 * * * ? *", 0),
        ("0 0 * * ? 1999", 5),
        ("*/0 * * * ? *", 0),
        ("0 0 1,,2 * ? *", 2),
        ("0 0 * 13 ? *", 3),
    ],
)
def test_cron_rejects(expression, field):
    with pytest.raises(cron.CronError) as err:
        cron.parse(expression)
    assert err.value.field == field
    assert err.value.hint
