"""Metaflow's own tutorials 00-04 (from the installed wheel, as ``metaflow tutorials
pull`` lays them out) generated and run on Temporal, each compared with
``python <tutorial>/<flow>.py run``. They run in order in one datastore, so 03 and 04
read MovieStatsFlow (02) through the Client as they do for a user.

Run from the tutorials folder, as their README says::

    python 01-playlist/playlist.py --metadata=local --datastore=local run
    mf-temporal-codegen 01-playlist/playlist.py -o out_01
    python -m out_01.play_list_flow_worker --address ...
    python -m out_01.play_list_flow_worker trigger --address ...

What is not compared as is, because the tutorials draw it at random:
- ``movies`` and ``playlist`` (01, 03, 04) are shuffled: compared as sorted lists;
- ``bonus`` (01, 03) is ``random.choice``/``randint``: not compared across runs, but
  checked in each run (the join's is the bonus step's, and its genres exclude the
  requested genre); 04's ``bonus`` is the closest title by edit distance and is
  compared as is;
- ``genres`` (02) is ``list(set(...))``, ordered by string hashing (random per
  process): compared sorted. The foreach over it runs the genres in that order, so
  a genre's task has another split index in each run: tasks are compared as a
  sorted list, and ``genre_stats`` is a dict (its order is not compared either);
- the ``end`` step's stdout of 01/03/04 prints the shuffled playlist: not compared.

Tutorial 04 declares ``@conda_base(python=...)`` and ``@conda(libraries={"editdistance":
...})``; conda cannot be installed here, Metaflow itself refuses ``@conda`` without
``--environment=conda``, and the generator rejects both. Both lines are removed at
run time and a small pure-Python ``editdistance`` module (same ``eval`` function:
Levenshtein distance) is put next to the flow, where its task imports it from.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import metaflow
import pytest
from metaflow.plugins.datastores.local_storage import LocalStorage
from worker_process import run_module, worker_process

pytestmark = pytest.mark.e2e

WHEEL_TUTORIALS = Path(metaflow.__file__).parent / "tutorials"


@dataclass(frozen=True)
class Tutorial:
    folder: str
    file: str
    flow: str
    module: str  # generated module base name

    @property
    def path(self) -> str:
        return f"{self.folder}/{self.file}"


TUTORIALS = {
    "00": Tutorial("00-helloworld", "helloworld.py", "HelloFlow", "hello_flow"),
    "01": Tutorial("01-playlist", "playlist.py", "PlayListFlow", "play_list_flow"),
    "02": Tutorial("02-statistics", "stats.py", "MovieStatsFlow", "movie_stats_flow"),
    "03": Tutorial(
        "03-playlist-redux", "playlist.py", "PlayListFlow", "play_list_flow"
    ),
    "04": Tutorial("04-playlist-plus", "playlist.py", "PlayListFlow", "play_list_flow"),
}
# artifact -> normalisation before comparing (None: not compared across runs)
RANDOM = {
    "01": {"movies": sorted, "playlist": sorted, "bonus": None},
    "02": {"genres": sorted},
    "03": {"movies": sorted, "playlist": sorted, "bonus": None},
    "04": {"movies": sorted, "playlist": sorted},
}
# steps whose stdout is the same in every run
SAME_STDOUT = {
    "00": ("start", "hello", "end"),
    "01": ("start", "bonus_movie", "genre_movies", "join"),
    "02": ("start", "compute_statistics", "join", "end"),
    "03": ("start", "bonus_movie", "genre_movies", "join"),
    "04": ("start", "bonus_movie", "genre_movies", "join"),
}

EDITDISTANCE = '''\
"""Stand-in for the editdistance package (tutorial 04 without conda)."""


def eval(a, b):
    """Levenshtein distance between two sequences."""
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]
'''

# native run pathspecs by tutorial, for this module's datastore
_NATIVE: dict[str, str] = {}


@pytest.fixture(scope="module")
def tutorials(tmp_path_factory) -> Path:
    """The tutorials folder with its own datastore (``./.metaflow``, where a user's
    lands and where the local card store and the Client agree)."""
    root = tmp_path_factory.mktemp("metaflow-tutorials")
    for tutorial in TUTORIALS.values():
        shutil.copytree(
            WHEEL_TUTORIALS / tutorial.folder,
            root / tutorial.folder,
            ignore=shutil.ignore_patterns("__pycache__", "*.ipynb"),
        )
    plus = root / TUTORIALS["04"].path
    lines = plus.read_text().splitlines(keepends=True)
    kept = [
        line
        for line in lines
        if not line.lstrip().startswith(("@conda_base(", "@conda("))
    ]
    assert (
        len(lines) - len(kept) == 2
    ), "tutorial 04 changed: expected one @conda_base and one @conda"
    plus.write_text("".join(kept))
    (plus.parent / "editdistance.py").write_text(EDITDISTANCE)

    (root / LocalStorage.DATASTORE_DIR).mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("USERNAME", "tester")
        mp.setenv("METAFLOW_DATASTORE_SYSROOT_LOCAL", str(root))
        mp.setenv("METAFLOW_DEFAULT_METADATA", "local")
        mp.setenv("METAFLOW_DEFAULT_DATASTORE", "local")
        mp.delenv("METAFLOW_CARD_LOCALROOT", raising=False)
        mp.setattr(LocalStorage, "SYSROOT_VAR", str(root))
        mp.setattr(
            LocalStorage, "datastore_root", str(root / LocalStorage.DATASTORE_DIR)
        )
        _NATIVE.clear()
        yield root
        _NATIVE.clear()


def run_natively(root: Path, key: str) -> str:
    """``python <tutorial>/<flow>.py run`` from the tutorials folder (once per module)."""
    if key not in _NATIVE:
        tutorial = TUTORIALS[key]
        id_file = Path(tempfile.mkdtemp()) / "run-id"
        done = subprocess.run(
            [
                sys.executable,
                tutorial.path,
                "--metadata=local",
                "--datastore=local",
                "run",
                "--run-id-file",
                str(id_file),
            ],
            cwd=root,
            env=dict(os.environ),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        _NATIVE[key] = f"{tutorial.flow}/{id_file.read_text().strip()}"
    return _NATIVE[key]


def generate(root: Path, key: str) -> str:
    """``mf-temporal-codegen <tutorial> -o out_<key>``; the worker module to run."""
    script = Path(sys.executable).with_name("mf-temporal-codegen")
    command = (
        [str(script)]
        if script.exists()
        else [sys.executable, "-m", "mf_temporal_codegen"]
    )
    done = subprocess.run(
        [*command, TUTORIALS[key].path, "-o", f"out_{key}"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return f"out_{key}.{TUTORIALS[key].module}_worker"


def run_on_temporal(root: Path, temporal_env, worker_module: str) -> str:
    address = ("--address", temporal_env.address)
    with worker_process(root, worker_module, *address) as worker:
        worker.wait_for("worker for", timeout=120)
        done = run_module(root, worker_module, "trigger", *address, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr + worker.output()
    found = re.search(r"^pathspec: (\S+)$", done.stdout, re.M)
    assert found, done.stdout
    return found[1]


def comparable(pathspec: str, key: str) -> dict[str, list[dict]]:
    """Step -> its tasks' artifacts, normalised per :data:`RANDOM`, tasks sorted."""
    from metaflow import Run, namespace

    namespace(None)
    rules = RANDOM.get(key, {})
    steps = {}
    for step in Run(pathspec):
        tasks = []
        for task in step:
            values = {}
            for artifact in task:
                if artifact.id.startswith("_"):
                    continue
                if artifact.id not in rules:
                    values[artifact.id] = artifact.data
                elif rules[artifact.id] is not None:
                    values[artifact.id] = rules[artifact.id](artifact.data)
            tasks.append(dict(sorted(values.items())))
        steps[step.id] = sorted(tasks, key=repr)
    return steps


def stdout_by_step(pathspec: str, steps) -> dict[str, list[str]]:
    from metaflow import Run

    run = Run(pathspec)
    return {step: sorted(task.stdout for task in run[step]) for step in steps}


def check_bonus(pathspec: str, genre: str = "Sci-Fi") -> None:
    """A random bonus pick: one movie, the same in the join, not of the genre."""
    from metaflow import Run

    run = Run(pathspec)
    bonus = run["bonus_movie"].task["bonus"].data
    assert run["join"].task["bonus"].data == bonus
    title, genres = bonus
    assert title and genre.lower() not in genres.lower()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("key", sorted(TUTORIALS))
def test_tutorial(key, tutorials, temporal_env):
    from metaflow import Flow, Run, namespace

    if key in ("03", "04"):
        run_natively(tutorials, "02")  # what they read, when 02 is not selected
    theirs = run_natively(tutorials, key)
    worker_module = generate(tutorials, key)
    ours = run_on_temporal(tutorials, temporal_env, worker_module)

    namespace(None)
    assert ours.startswith(TUTORIALS[key].flow + "/")
    assert Run(ours).successful
    mine, native = comparable(ours, key), comparable(theirs, key)
    assert sorted(mine) == sorted(native)
    for step in native:
        assert len(mine[step]) == len(native[step]), step
        assert mine[step] == native[step], step
    assert stdout_by_step(ours, SAME_STDOUT[key]) == stdout_by_step(
        theirs, SAME_STDOUT[key]
    )

    if key in ("01", "03"):
        check_bonus(ours)
        check_bonus(theirs)
    if key == "00":
        assert "Metaflow says: Hi!" in Run(ours)["hello"].task.stdout
    if key == "02":
        stats = Run(ours).data.genre_stats
        assert "sci-fi" in stats and len(stats["sci-fi"]["quartiles"]) == 3
    if key in ("03", "04"):
        # Both read the latest successful MovieStatsFlow run of this namespace (the
        # one 02 ran on Temporal, when it ran) and say which.
        namespace("user:tester")
        latest = Flow("MovieStatsFlow").latest_successful_run
        namespace(None)
        used = re.findall(r"Using analysis from '(.*)'", Run(ours)["start"].task.stdout)
        assert used == [str(latest)], Run(ours)["start"].task.stdout
        assert Run(ours)["start"].task["genre_stats"].data == latest.data.genre_stats
    if key == "04":
        assert (
            Run(ours)["start"].task["dataframe"].data
            == latest["start"].task.data.dataframe
        )
        assert (
            Run(ours)["join"].task["bonus"].data
            == Run(theirs)["join"].task["bonus"].data
        )
