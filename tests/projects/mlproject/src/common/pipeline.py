"""The project's base flow: configuration, shared parameters, decorators."""

import os

from metaflow import Config, FlowSpec, IncludeFile, Parameter, config_expr, project

from common.config import parse_yaml
from common.decorators import retry_all_steps
from common.model import read_rows
from common.settings import DEFAULT_LR


@retry_all_steps
@project(name=config_expr("project.project"))
class Pipeline(FlowSpec):
    """Base class of every mlproject flow."""

    project = Config("project", default="config/local.yml", parser=parse_yaml)

    model_module = Parameter(
        "model_module", help="Model family to train", default=project.backend["module"]
    )
    storage_root = Parameter(
        "storage_root", help="Where models are published", default=project.backend.storage
    )
    learning_rate = Parameter("learning_rate", help="Ridge strength", default=DEFAULT_LR)
    owner = Parameter("owner", help="Who is accountable", default=os.getenv("MLP_OWNER", "nobody"))
    train_data = IncludeFile("train_data", help="Training set (CSV)", default="data/train.csv")

    def training_rows(self):
        return read_rows(self.train_data, list(self.project.features))
