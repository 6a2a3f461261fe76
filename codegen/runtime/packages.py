"""Metaflow code packages: what a run's tasks run from, as Argo's pods run from one.

A module generated with ``--code-package`` (``FlowRef.packaged``; ``temporal create``
does it by default, as Argo's) has its worker build Metaflow's own code package
(``MetaflowPackage``: the flow's directory filtered by ``--package-suffixes``, and
what decorators add) from its checkout when it starts, and upload it to the run
datastore, where it is kept by its content hash (the same code uploads nothing
again). Every run takes the package of the worker that starts it (a local activity:
the choice is in the run's history) and hands it to every task (``FlowRef.package``);
a task records it in its metadata (``Run.code``). A worker that runs a task of a
packaged run downloads the package once per hash, checks the hash, unpacks the
user code into its cache (beside a local datastore: :data:`LOCAL_DIR`) and runs
the task there: it needs no checkout, and two versions deployed side by side never
mix (see :mod:`.pool`).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from temporalio import activity
from temporalio.exceptions import ApplicationError

from .payloads import CodePackage

# The local activity a packaged run starts with: the package of the worker running it.
CURRENT_PACKAGE_ACTIVITY = "metaflow_code_package"
# Where unpacked packages are kept (one directory per hash), unless
# $MF_TEMPORAL_PACKAGE_CACHE says otherwise.
CACHE_ENV = "MF_TEMPORAL_PACKAGE_CACHE"
DEFAULT_CACHE = "~/.cache/mf-temporal-codegen/packages"
# The packages of runs on a local datastore are unpacked beside it, in this directory
# of its sysroot: a task running in one finds the datastore's ``.metaflow`` walking up
# from its cwd, as Metaflow's local cards and config are found.
LOCAL_DIR = ".mf-temporal-packages"
# A task's environment names its package this way: Metaflow records it as the task's
# ``code-package`` metadata (what ``Task.code`` / ``Run.code`` read).
CODE_ENV = ("METAFLOW_CODE_SHA", "METAFLOW_CODE_URL", "METAFLOW_CODE_DS")
CODE_METADATA_ENV = "METAFLOW_CODE_METADATA"


class PackageError(ApplicationError):
    """A code package cannot be had (missing from the datastore, corrupt)."""

    def __init__(self, message: str):
        super().__init__(message, type="MetaflowCodePackage", non_retryable=True)


def task_env(package: CodePackage) -> dict[str, str]:
    """The environment variables under which a task records ``package``."""
    values = (package.sha, package.url, package.ds_type)
    return {**dict(zip(CODE_ENV, values)), CODE_METADATA_ENV: package.metadata}


def cache_root(env: Mapping[str, str] | None = None) -> Path:
    """The directory unpacked packages are kept in."""
    source = os.environ if env is None else env
    return Path(os.path.expanduser(source.get(CACHE_ENV) or DEFAULT_CACHE))


class PackageCache:
    """Packages unpacked on this host, by hash: each is downloaded from the run's
    datastore once (one download at a time per hash in this process; processes
    sharing the cache never see half a package: it is unpacked aside and renamed)."""

    def __init__(self, root: Path):
        self.root = root
        self._pending: dict[str, asyncio.Future[Path]] = {}

    async def unpacked(self, package: CodePackage, store) -> Path:
        """The directory holding ``package``'s user code (``store``: the run's
        :class:`FlowDataStore`)."""
        where = self.root / package.sha
        if where.is_dir():
            return where
        pending = self._pending.get(package.sha)
        if pending is None:
            pending = asyncio.ensure_future(
                asyncio.to_thread(self._fetch, package, store, where)
            )
            self._pending[package.sha] = pending
            pending.add_done_callback(lambda _: self._pending.pop(package.sha, None))
        return await asyncio.shield(pending)

    def _fetch(self, package: CodePackage, store, where: Path) -> Path:
        from metaflow.package import MetaflowPackage
        from metaflow.packaging_sys import ContentType

        try:
            [(_, blob)] = list(store.load_data([package.sha]))
        except Exception as err:  # the datastore's own errors vary by backend
            raise PackageError(
                f"code package {package.sha} of flow {store.flow_name} is not in "
                f"its datastore ({package.url}): {type(err).__name__}: {err}"
            ) from None
        found = hashlib.sha1(blob).hexdigest()
        if found != package.sha:
            raise PackageError(
                f"code package {package.url} is corrupt: its content hashes to "
                f"{found}, not {package.sha}"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        aside = Path(tempfile.mkdtemp(prefix=f".{package.sha}-", dir=self.root))
        try:
            MetaflowPackage.cls_extract_into(
                package.metadata,
                io.BytesIO(blob),
                str(aside),
                ContentType.USER_CONTENT.value,
            )
            try:
                aside.rename(where)
            except OSError:
                if not where.is_dir():  # (another process unpacked it first)
                    raise
        finally:
            shutil.rmtree(aside, ignore_errors=True)
        return where


class PackageSource:
    """The local activity that gives a packaged run its package: the one the
    worker built when it started (:data:`CURRENT_PACKAGE_ACTIVITY`)."""

    def __init__(self, package: CodePackage | None):
        self.package = package

    @activity.defn(name=CURRENT_PACKAGE_ACTIVITY)
    async def current(self, flow: str) -> CodePackage:
        if self.package is None:
            raise PackageError(
                f"the worker running this workflow has no code package of flow "
                f"{flow}: start the flow's worker where its checkout is (it builds "
                "and uploads the package when it starts)"
            )
        return self.package
