"""Imports resolve as Python resolves them, on disk, without importing anything.

A flow's base classes (and the constants it uses) are looked for in the flow file's
directory, then ``--path`` directories, then ``PYTHONPATH``, then the generator's
installed packages; packages, namespace packages and relative imports work as in
Python; a module that cannot be found is an error naming the import, where it was
looked for, and the fix.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mf_temporal_codegen.cache import Cache
from mf_temporal_codegen.errors import CodegenErrors
from mf_temporal_codegen.imports import Finder, SearchPath, search_path
from mf_temporal_codegen.parse import load_flows
from mf_temporal_codegen.pipeline import Options, generate

BASE = '''\
from metaflow import FlowSpec, Parameter, step


class Pipeline(FlowSpec):
    """The project's base flow."""

    limit = Parameter("limit", default={limit})

    @step
    def start(self):
        self.next(self.train)
'''
TRAINING = """\
from metaflow import step
from common.pipeline import Pipeline


class TrainingFlow(Pipeline):
    @step
    def train(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    TrainingFlow()
"""


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def _cli(
    cwd: Path, *args, env: dict | None = None, prelude: str = ""
) -> subprocess.CompletedProcess:
    """The real CLI in a fresh interpreter; ``prelude`` runs first (e.g. to extend sys.path
    as an installed package's .pth file would)."""
    probe = (
        "import json, sys\n"
        f"{prelude}\n"
        "from mf_temporal_codegen.cli import main\n"
        "code = main(sys.argv[1:])\n"
        "print('MODULES ' + json.dumps(sorted(sys.modules)), file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    full_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    full_env.update({"MF_TEMPORAL_CODEGEN_NO_CACHE": "1", **(env or {})})
    done = subprocess.run(
        [sys.executable, "-c", probe, *map(str, args)],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    *err, modules = done.stderr.splitlines()
    assert modules.startswith("MODULES "), done.stderr
    done.stderr = "\n".join(err) + ("\n" if err else "")
    done.modules = json.loads(modules[len("MODULES ") :])
    return done


@pytest.fixture
def src_layout(tmp_path: Path) -> Path:
    """A repository with flows in src/pipelines and shared code in src/common."""
    return _write(
        tmp_path / "repo",
        {
            "pyproject.toml": "",
            "src/pipelines/training.py": TRAINING,
            "src/common/__init__.py": "",
            "src/common/pipeline.py": BASE.format(limit=7),
        },
    )


def test_src_layout_through_pythonpath(src_layout: Path):
    result = _cli(
        src_layout, "src/pipelines/training.py", "-o", "out", env={"PYTHONPATH": "src"}
    )
    assert result.returncode == 0, result.stderr
    text = (src_layout / "out" / "training_flow_workflow.py").read_text()
    assert "limit: int = 7" in text
    # the inherited step cites its own file (relative to the import root)
    assert "# start (common/pipeline.py:10)" in text
    assert "# train (training.py:7)" in text
    # the PYTHONPATH entry inside the project becomes --path: the command regenerates
    # the same bytes without the environment variable
    assert (
        "#   mf-temporal-codegen src/pipelines/training.py -o out --path src\n" in text
    )


def test_src_layout_through_path_option(src_layout: Path):
    result = _cli(src_layout, "src/pipelines/training.py", "-o", "out", "--path", "src")
    assert result.returncode == 0, result.stderr
    text = (src_layout / "out" / "training_flow_workflow.py").read_text()
    assert "limit: int = 7" in text
    # --path is part of the regenerate command, relative to the project root
    assert (
        "#   mf-temporal-codegen src/pipelines/training.py -o out --path src\n" in text
    )
    # the same from another directory: the paths in the header stay root-relative
    again = _cli(
        src_layout / "src",
        "pipelines/training.py",
        "-o",
        "../out",
        "--path",
        ".",
        "--check",
    )
    assert again.returncode == 0, again.stdout + again.stderr


def test_an_unresolved_base_class_names_the_import_and_the_search(src_layout: Path):
    result = _cli(src_layout, "src/pipelines/training.py", "-o", "out")
    assert result.returncode == 2
    first, hint = result.stderr.splitlines()[:2]
    assert first.startswith(
        "src/pipelines/training.py:2:1: error: cannot find module 'common' for "
        "`from common.pipeline import Pipeline` (searched src/pipelines, "
    ), first
    assert "no Metaflow flow found" not in result.stderr
    assert "--path DIR or PYTHONPATH=DIR" in hint
    assert not (src_layout / "out").exists()


def test_a_missing_submodule_and_a_missing_name(tmp_path: Path):
    root = _write(
        tmp_path,
        {
            "flow.py": TRAINING.replace(
                "common.pipeline import Pipeline", "common.pipelines import Pipeline"
            ),
            "other.py": TRAINING.replace(
                "from common.pipeline import Pipeline",
                "from common.pipeline import Base as Pipeline",
            ),
            "common/__init__.py": "",
            "common/pipeline.py": BASE.format(limit=1),
        },
    )
    with pytest.raises(CodegenErrors) as err:
        load_flows(root / "flow.py", "flow.py", SearchPath())
    assert str(err.value).startswith(
        "flow.py:2:1: error: cannot find module 'common.pipelines' for "
        f"`from common.pipelines import Pipeline` (searched {root / 'common'})"
    )
    with pytest.raises(CodegenErrors) as err:
        load_flows(root / "other.py", "other.py", SearchPath())
    assert str(err.value).startswith(
        "other.py:2:1: error: cannot import name 'Base' from 'common.pipeline' ("
    )


def test_search_order_flow_dir_then_path_then_pythonpath(tmp_path: Path):
    """The first directory that has the module wins, as on sys.path."""
    root = _write(
        tmp_path,
        {
            "flows/training.py": TRAINING,
            "first/common/__init__.py": "",
            "first/common/pipeline.py": BASE.format(limit=1),
            "second/common/__init__.py": "",
            "second/common/pipeline.py": BASE.format(limit=2),
        },
    )
    flow = root / "flows" / "training.py"

    def limit(search: SearchPath) -> int:
        return load_flows(flow, str(flow), search)[0].parameters[0].default

    cwd = str(root)
    env = {"PYTHONPATH": os.pathsep.join(["second", "first"])}
    assert limit(search_path([], env, cwd)) == 2
    assert limit(search_path(["first"], env, cwd)) == 1  # --path before PYTHONPATH
    _write(
        root,
        {
            "flows/common/__init__.py": "",
            "flows/common/pipeline.py": BASE.format(limit=3),
        },
    )
    assert limit(search_path(["first"], env, cwd)) == 3  # the flow's directory first


def test_search_path_reads_pythonpath_as_python_does(tmp_path: Path):
    env = {"PYTHONPATH": os.pathsep.join(["src", "", str(tmp_path / "abs"), "src"])}
    search = search_path(
        ["lib"],
        env,
        str(tmp_path),
        interpreter_path=["", str(tmp_path / "site"), str(tmp_path / "src")],
    )
    # relative entries against the working directory, an empty one is the working
    # directory itself; each directory once, installed ones after the local ones
    assert search.local == (
        str(tmp_path / "lib"),
        str(tmp_path / "src"),
        str(tmp_path),
        str(tmp_path / "abs"),
    )
    assert search.installed == (str(tmp_path / "site"),)


def test_a_package_wins_over_a_module_of_the_same_name(tmp_path: Path):
    root = _write(
        tmp_path,
        {
            "flow.py": TRAINING,
            "common/__init__.py": "",
            "common/pipeline.py": BASE.format(limit=1),
            "common/pipeline/__init__.py": BASE.format(limit=2),
        },
    )
    [flow] = load_flows(root / "flow.py", "flow.py", SearchPath())
    assert flow.parameters[0].default == 2
    assert flow.step("start").pos.cite == "common/pipeline/__init__.py"


def test_namespace_packages(tmp_path: Path):
    """Directories without __init__.py are namespace packages; their portions are
    gathered over the search path, and a regular package later on still wins."""
    root = _write(
        tmp_path,
        {
            "flow.py": TRAINING.replace(
                "from common.pipeline import Pipeline",
                "from common.steps import Steps\nfrom common.pipeline import Pipeline",
            ).replace("(Pipeline)", "(Steps, Pipeline)"),
            "common/pipeline.py": BASE.format(limit=3),
            "lib/common/steps.py": "class Steps:\n    EXTRA = 1\n",
        },
    )
    [flow] = load_flows(
        root / "flow.py", "flow.py", SearchPath(local=(str(root / "lib"),))
    )
    assert flow.parameters[0].default == 3
    finder = Finder([(root, True), (root / "lib", True)])
    common = finder.find("common")
    assert common.file is None and common.locations == (
        root / "common",
        root / "lib" / "common",
    )
    _write(
        root,
        {
            "later/common/__init__.py": "",
            "later/common/pipeline.py": BASE.format(limit=4),
        },
    )
    regular = Finder([(root, True), (root / "later", True)]).find("common")
    assert regular.file == root / "later" / "common" / "__init__.py"


def test_relative_imports_from_the_importing_modules_package(tmp_path: Path):
    root = _write(
        tmp_path,
        {
            "flow.py": TRAINING.replace("common.pipeline", "common.flows.training"),
            "common/__init__.py": "",
            "common/settings.py": "LIMIT = 11\n",
            "common/flows/__init__.py": "from .base import Pipeline\n",
            "common/flows/base.py": BASE.format(limit="LIMIT").replace(
                "from metaflow import",
                "from ..settings import LIMIT\nfrom metaflow import",
            ),
            "common/flows/training.py": "from . import Pipeline\n",
        },
    )
    [flow] = load_flows(root / "flow.py", "flow.py", SearchPath())
    assert flow.parameters[0].default == 11
    assert flow.parameters[0].default_code == "LIMIT"
    assert flow.step("start").pos.cite == "common/flows/base.py"


def test_a_relative_import_in_the_flow_file_is_an_error(tmp_path: Path):
    root = _write(
        tmp_path,
        {"flow.py": TRAINING.replace("from common.pipeline", "from .common.pipeline")},
    )
    with pytest.raises(CodegenErrors) as err:
        load_flows(root / "flow.py", "flow.py", SearchPath())
    assert str(err.value).startswith(
        "flow.py:2:1: error: relative import `from .common.pipeline import Pipeline` in the flow file"
    )


def test_an_installed_base_class_is_located_never_imported(tmp_path: Path):
    """A base flow from an installed package (a directory on the generator's sys.path,
    as a .pth file puts it there): read from disk, and the package, which raises when
    imported, is never imported."""
    site = _write(
        tmp_path / "site",
        {
            "shared_flows/__init__.py": "raise RuntimeError('shared_flows must never be imported')\n",
            "shared_flows/consts.py": "LIMIT = 5\nraise RuntimeError('never imported')\n",
            "shared_flows/base.py": BASE.format(limit="LIMIT").replace(
                "from metaflow import",
                "from shared_flows.consts import LIMIT\nfrom metaflow import",
            )
            + "\nraise RuntimeError('shared_flows.base must never be imported')\n",
        },
    )
    proj = _write(
        tmp_path / "proj",
        {
            "pyproject.toml": "",
            "flow.py": TRAINING.replace("common.pipeline", "shared_flows.base"),
        },
    )
    prelude = f"sys.path.append({str(site)!r})"
    result = _cli(proj, "flow.py", "-o", "out", prelude=prelude)
    assert result.returncode == 0, result.stderr
    assert not [m for m in result.modules if m.startswith("shared_flows")]
    text = (proj / "out" / "training_flow_workflow.py").read_text()
    assert "# start (shared_flows/base.py:11)" in text
    # an installed package's constants are Metaflow's to evaluate (only the flow's
    # own code is folded)
    [flow] = load_flows(proj / "flow.py", "flow.py", SearchPath(installed=(str(site),)))
    limit = flow.parameters[0]
    assert (limit.default.code, limit.default.kind, limit.type) == (
        "LIMIT",
        "expr",
        "auto",
    )
    # without the site directory the base class is not found
    missing = _cli(proj, "flow.py", "-o", "out2")
    assert (
        missing.returncode == 2
        and "cannot find module 'shared_flows'" in missing.stderr
    )


def test_standard_library_bases_are_not_read(tmp_path: Path):
    root = _write(
        tmp_path,
        {
            "flow.py": TRAINING.replace(
                "from common.pipeline import Pipeline",
                "import abc\nfrom base import Pipeline",
            ).replace("(Pipeline)", "(Pipeline, abc.ABC)"),
            "base.py": BASE.format(limit=1),
        },
    )
    [flow] = load_flows(root / "flow.py", "flow.py", SearchPath())
    assert [s.name for s in flow.steps] == ["start", "train", "end"]


def test_search_path_changes_are_cache_misses(
    src_layout: Path, tmp_path: Path, monkeypatch
):
    monkeypatch.chdir(src_layout)
    monkeypatch.delenv("PYTHONPATH", raising=False)
    cache = Cache(tmp_path / "cache")
    _write(
        src_layout,
        {"alt/common/__init__.py": "", "alt/common/pipeline.py": BASE.format(limit=9)},
    )
    flow = [Path("src/pipelines/training.py")]

    def gen(*paths: str) -> str:
        files = generate(
            flow, Path("out"), Options(paths=tuple(map(Path, paths))), cache
        )
        return files[Path("out/training_flow_workflow.py")]

    assert "limit: int = 7" in gen("src")
    assert "limit: int = 9" in gen("alt")
    assert "limit: int = 7" in gen("src")
    monkeypatch.setenv("PYTHONPATH", "alt")
    assert (
        "limit: int = 9"
        in generate(flow, Path("out"), Options(), cache)[
            Path("out/training_flow_workflow.py")
        ]
    )
    monkeypatch.setenv("PYTHONPATH", "src")
    assert (
        "limit: int = 7"
        in generate(flow, Path("out"), Options(), cache)[
            Path("out/training_flow_workflow.py")
        ]
    )
