"""mf-temporal-codegen as a Metaflow extension: ``python flow.py temporal ...`` and
``Deployer(flow_file).temporal()``. The code lives in ``mf_temporal_codegen.plugin``."""

CLIS_DESC = [("temporal", "mf_temporal_codegen.plugin.cli.cli")]

DEPLOYER_IMPL_PROVIDERS_DESC = [
    ("temporal", "mf_temporal_codegen.plugin.deployer.TemporalDeployer")
]

STEP_DECORATORS_DESC = [
    ("temporal_internal", "mf_temporal_codegen.task_metadata.TemporalInternalDecorator")
]
