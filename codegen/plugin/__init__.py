"""Metaflow's side: the ``temporal`` command group, the Deployer implementation and the
deployment records they keep on the Temporal server."""
