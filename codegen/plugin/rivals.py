"""Another installed Metaflow extension that also provides ``temporal``: Metaflow
keeps the one it loads last, silently; this says which one that is."""

from __future__ import annotations

import sys

NAME = "temporal"
# (Metaflow's plugin category, this package's entry)
OURS = {
    "cli": "mf_temporal_codegen.plugin.cli.cli",
    "deployer_impl_provider": "mf_temporal_codegen.plugin.deployer.TemporalDeployer",
}
WHAT = {
    "cli": "the `temporal` command",
    "deployer_impl_provider": "Deployer.temporal()",
}


def conflicts() -> list[str]:
    """One line per category where another extension also claims ``temporal``."""
    from metaflow.extension_support import get_modules
    from metaflow.extension_support import plugins

    packages = {m.tl_package: m.package_name for m in get_modules("plugins")}
    lines = []
    for category, ours in OURS.items():
        listed = getattr(plugins, plugins._list_for_category(category), [])
        claims = [path for name, path in listed if name == NAME]
        others = [path for path in claims if path != ours]
        if not others:
            continue
        owners = sorted({_owner(path, packages) for path in others})
        used = (
            "mf-temporal-codegen's"
            if claims[-1] == ours
            else f"{_owner(claims[-1], packages)}'s"
        )
        lines.append(
            f"warning: {', '.join(owners)} and mf-temporal-codegen both provide "
            f"{WHAT[category]}; Metaflow uses {used}. Uninstall one of them (or run "
            "`mf-temporal-codegen FLOW.py -o DIR`, which does not depend on it)."
        )
    return lines


def warn() -> None:
    for line in conflicts():
        print(line, file=sys.stderr)


def _owner(path: str, packages: dict[str, str]) -> str:
    parts = path.split(".")
    if parts[0] == "metaflow_extensions" and len(parts) > 1:
        return f"{packages.get(parts[1], parts[1])} (metaflow_extensions.{parts[1]})"
    return parts[0]
