"""Values the source spells out are read statically; the rest is Metaflow's to compute.

Module constants (in the flow file and the local modules it imports), names bound to
them and simple constant expressions are folded, keeping their source text;
anything else becomes ``Deferred`` with the kind of evaluation Metaflow gives it.
Decorators are forwarded with their origin, whoever defines them.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from mf_temporal_codegen import model as m
from mf_temporal_codegen.errors import CodegenErrors
from mf_temporal_codegen.imports import SearchPath
from mf_temporal_codegen.parameters import RESERVED_PARAMETERS
from mf_temporal_codegen.parse import load_flows

SETTINGS = '''\
"""Project constants."""
BASE_LR = 0.1
DEFAULT_LR = BASE_LR / 2
MEMORY = 1024 * 4
ENV = {"STAGE": "train"}
'''
FLOW = """\
import os

from metaflow import (
    Config, FlowSpec, IncludeFile, JSONType, Parameter, config_expr, environment,
    project, resources, retry, step,
)

import common.settings
from common import settings
from common.settings import DEFAULT_LR, ENV as SETTINGS_ENV

BASE = {"A": "1"}
ENV = {**BASE, "B": "2"}
MERGED = dict(BASE, C="3", **SETTINGS_ENV)
NAME = "tr" + "ain"
NEG = -3
SCALED = NEG * 2 + 1
ITEMS = (1, 2, *[3, 4])
TWICE = 1
TWICE = 2
if os.environ.get("X"):
    MAYBE = 1
else:
    MAYBE = 2
for LOOPED in range(2):
    pass
COUNTER = 0
HUGE = "x" * 10**9


def bump():
    global COUNTER
    COUNTER = 1


def default_fn(ctx):
    return "x"


@project(name=NAME)
class FoldFlow(FlowSpec):
    cfg = Config("cfg", default="cfg.json")
    LOCAL = 5

    lr = Parameter("lr", default=DEFAULT_LR)
    lr2 = Parameter("lr2", default=settings.DEFAULT_LR * 10)
    lr3 = Parameter("lr3", default=common.settings.DEFAULT_LR)
    local = Parameter("local", default=LOCAL + 1, help="local " + NAME)
    neg = Parameter("neg", default=SCALED)
    items = Parameter("items", default=ITEMS, type=JSONType)
    fs = Parameter("fs", default=f"{NAME}-{NEG:+d}-{BASE['A']!r}")
    literal = Parameter("literal", 3)
    required = Parameter("required", required=not False, type=str)
    twice = Parameter("twice", default=TWICE)
    maybe = Parameter("maybe", default=MAYBE)
    looped = Parameter("looped", default=LOOPED)
    counter = Parameter("counter", default=COUNTER)
    huge = Parameter("huge", default=HUGE)
    env = Parameter("env", default=os.getenv("HOME", "/"))
    fn = Parameter("fn", default=default_fn)
    lam = Parameter("lam", default=lambda ctx: 1, type=int)
    ce = Parameter("ce", default=config_expr("cfg.a"))
    from_cfg = Parameter("from_cfg", default=cfg.backend["module"])
    data = IncludeFile("data", default="data/" + "x.csv", is_text=True, help="rows")

    @environment(vars=ENV)
    @resources(cpu=SCALED + 10, memory=settings.MEMORY, gpu=0)
    @retry(times=cfg.retries)
    @step
    def start(self):
        self.next(self.end)

    @environment(vars=MERGED)
    @step
    def end(self):
        pass


if __name__ == "__main__":
    FoldFlow()
"""


def _project(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def _flow(root: Path, name: str = "flow.py") -> m.Flow:
    [flow] = load_flows(root / name, name, SearchPath())
    return flow


@pytest.fixture(scope="module")
def flow(tmp_path_factory) -> m.Flow:
    root = _project(
        tmp_path_factory.mktemp("fold"),
        {"flow.py": FLOW, "common/__init__.py": "", "common/settings.py": SETTINGS},
    )
    return _flow(root)


def _param(flow: m.Flow, name: str) -> m.Parameter:
    return next(p for p in flow.parameters if p.name == name)


@pytest.mark.parametrize(
    "name, default, code, ptype",
    [
        (
            "lr",
            0.05,
            "DEFAULT_LR",
            "float",
        ),  # imported from a local module, itself folded
        ("lr2", 0.5, "settings.DEFAULT_LR * 10", "float"),  # module attribute
        ("lr3", 0.05, "common.settings.DEFAULT_LR", "float"),  # import a.b
        ("local", 6, "LOCAL + 1", "int"),  # a class-body constant
        ("neg", -5, "SCALED", "int"),
        ("items", (1, 2, 3, 4), "ITEMS", "json"),
        ("fs", "train--3-'1'", "f\"{NAME}-{NEG:+d}-{BASE['A']!r}\"", "str"),
        ("literal", 3, None, "int"),  # positional default, a plain literal
    ],
)
def test_constants_are_folded(flow, name, default, code, ptype):
    p = _param(flow, name)
    assert (p.default, p.default_code, p.type, p.has_default) == (
        default,
        code,
        ptype,
        True,
    )


def test_other_arguments_fold_too(flow):
    assert _param(flow, "local").help == "local train"
    required = _param(flow, "required")
    assert (required.required, required.has_default, required.type) == (
        True,
        False,
        "str",
    )
    assert flow.project.name == "train"
    [project] = [d for d in flow.decorators if d.name == "project"]
    assert project.kwargs == (("name", "train"),) and project.code_of("name") == "NAME"


@pytest.mark.parametrize(
    "name, code, kind, ptype",
    [
        # bound twice, in if/else, by a for loop, rebound through `global`
        ("twice", "TWICE", m.EXPR, "auto"),
        ("maybe", "MAYBE", m.EXPR, "auto"),
        ("looped", "LOOPED", m.EXPR, "auto"),
        ("counter", "COUNTER", m.EXPR, "auto"),
        # would build a 1 GB string: not folded
        ("huge", "HUGE", m.EXPR, "auto"),
        ("env", 'os.getenv("HOME", "/")', m.CALL, "auto"),
        ("fn", "default_fn", m.CALL, "auto"),
        ("lam", "lambda ctx: 1", m.CALL, "int"),
        ("ce", 'config_expr("cfg.a")', m.CONFIG_EXPR, "auto"),
        ("from_cfg", 'cfg.backend["module"]', m.CONFIG_EXPR, "auto"),
    ],
)
def test_what_does_not_fold_is_deferred(flow, name, code, kind, ptype):
    p = _param(flow, name)
    assert isinstance(p.default, m.Deferred)
    assert (p.default.code, p.default.kind, p.type, p.default_code, p.has_default) == (
        code,
        kind,
        ptype,
        None,
        True,
    )
    assert p.default.pos.file == "flow.py" and p.default.pos.line == p.pos.line


def test_include_file_is_a_path_parameter(flow):
    data = _param(flow, "data")
    assert (data.kind, data.type, data.default, data.default_code, data.help) == (
        "include_file",
        "str",
        "data/x.csv",
        '"data/" + "x.csv"',
        "rows",
    )


def test_decorator_arguments_fold(flow):
    start, end = flow.step("start"), flow.step("end")
    env = start.decorator("environment")
    assert env.arg("vars") == {"A": "1", "B": "2"} and env.code_of("vars") == "ENV"
    resources = start.decorator("resources")
    assert (resources.arg("cpu"), resources.arg("memory"), resources.arg("gpu")) == (
        5,
        4096,
        0,
    )
    assert dict(resources.arg_code) == {
        "cpu": "SCALED + 10",
        "memory": "settings.MEMORY",
    }
    times = start.decorator("retry").arg("times")
    assert isinstance(times, m.Deferred) and (times.code, times.kind) == (
        "cfg.retries",
        m.CONFIG_EXPR,
    )
    assert end.decorator("environment").arg("vars") == {
        "A": "1",
        "C": "3",
        "STAGE": "train",
    }


def test_configs_of_base_classes_are_config_expressions(tmp_path):
    root = _project(
        tmp_path,
        {
            "base.py": """\
                from metaflow import Config, FlowSpec
                class Base(FlowSpec):
                    project = Config("project", default="p.json")
            """,
            "flow.py": """\
                from metaflow import Parameter, retry, step
                from base import Base
                class Flow(Base):
                    a = Parameter("a", default=Base.project.backend["module"])
                    b = Parameter("b", default=project.size)
                    @retry(times=Base.project.retries)
                    @step
                    def start(self):
                        self.next(self.end)
                    @step
                    def end(self):
                        pass
                if __name__ == "__main__":
                    Flow()
            """,
        },
    )
    flow = _flow(root)
    kinds = {p.name: p.default.kind for p in flow.parameters}
    assert kinds == {"a": m.CONFIG_EXPR, "b": m.CONFIG_EXPR}
    assert flow.step("start").decorator("retry").arg("times").kind == m.CONFIG_EXPR


@pytest.mark.parametrize(
    "name", ["tags", "run_id", "run-id", "max-workers", "with", "params"]
)
def test_reserved_parameter_names_are_rejected(tmp_path, name):
    assert name in RESERVED_PARAMETERS
    root = _project(
        tmp_path,
        {"flow.py": f"""\
                from metaflow import FlowSpec, IncludeFile, Parameter, step
                class Flow(FlowSpec):
                    ok = Parameter("ok", default=1)
                    bad = Parameter({name!r}, default=1)
                    data = IncludeFile("namespace")
                    @step
                    def start(self):
                        self.next(self.end)
                    @step
                    def end(self):
                        pass
                if __name__ == "__main__":
                    Flow()
            """},
    )
    with pytest.raises(CodegenErrors) as err:
        _flow(root)
    assert [(e.pos.line, e.message) for e in err.value.errors] == [
        (4, f"Parameter name {name!r} is a reserved word in Metaflow"),
        (5, "Parameter name 'namespace' is a reserved word in Metaflow"),
    ]


def test_decorators_are_forwarded_with_their_origin(tmp_path):
    """Metaflow's, an extension's (imported from metaflow), the user's own step
    decorators and FlowMutators: all recorded with the module they come from."""
    root = _project(
        tmp_path,
        {
            "common/__init__.py": "",
            "common/decorators.py": """\
                from metaflow import FlowMutator, user_step_decorator
                class retry_all(FlowMutator):
                    def mutate(self, mutable_flow):
                        pass
                @user_step_decorator
                def stamped(step_name, flow, inputs):
                    yield
            """,
            "flow.py": """\
                from metaflow import FlowMutator, FlowSpec, card, nvidia, step, test_step_decorator
                from common.decorators import retry_all, stamped
                class local_mutator(FlowMutator):
                    def mutate(self, mutable_flow):
                        pass
                @retry_all
                @local_mutator(level=2)
                @local_mutator
                class Flow(FlowSpec):
                    @nvidia(gpu=1)
                    @stamped
                    @test_step_decorator
                    @card
                    @step
                    def start(self):
                        self.next(self.end)
                    @step
                    def end(self):
                        pass
                if __name__ == "__main__":
                    Flow()
            """,
        },
    )
    flow = _flow(root)
    assert [(d.name, d.origin, d.kwargs) for d in flow.decorators] == [
        ("local_mutator", "flow", (("level", 2),)),
        ("local_mutator", "flow", ()),
        ("retry_all", "common.decorators", ()),
    ]
    assert [(d.name, d.origin) for d in flow.step("start").decorators] == [
        ("nvidia", "metaflow"),
        ("stamped", "common.decorators"),
        ("test_step_decorator", "metaflow"),
        ("card", "metaflow"),
    ]
