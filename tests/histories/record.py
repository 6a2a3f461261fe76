"""Record one history per example for tests/test_golden_histories.py.

    python tests/histories/record.py        # rewrites tests/histories/*.json

Runs every example's generated module on a fresh dev server (tasks in a scratch
datastore) and saves the main workflow's history. Record again only when a change
is meant to break runs in flight; the replay test then pins the new shape.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from helpers import EXAMPLE_FILES, generate_into, import_generated  # noqa: E402

from mf_temporal_codegen.runtime.devserver import dev_server  # noqa: E402
from mf_temporal_codegen.runtime.worker import running_worker  # noqa: E402


async def record(scratch: Path) -> None:
    async with dev_server(ui=False) as server:
        for flow_file in EXAMPLE_FILES:
            out = scratch / flow_file.stem / "out"
            files = generate_into(flow_file, out)
            name = next(p.stem for p in files if p.stem.endswith("_workflow"))
            module = import_generated(out, name)
            queue = f"golden-{name}"
            async with running_worker(server.client, module, task_queue=queue):
                handle = await server.client.start_workflow(
                    module.WORKFLOW.run,
                    args=[module.PARAMS(), None],
                    id=f"golden-{name}",
                    task_queue=queue,
                )
                await handle.result()
            history = await handle.fetch_history()
            (HERE / f"{name}.json").write_text(history.to_json())
            print(f"recorded {name}", flush=True)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="mf-golden-") as tmp:
        root = Path(tmp)
        (root / ".metaflow").mkdir()
        os.environ["METAFLOW_DATASTORE_SYSROOT_LOCAL"] = str(root)
        os.environ.setdefault("USERNAME", "golden")
        os.chdir(root)
        asyncio.run(record(root))


if __name__ == "__main__":
    main()
