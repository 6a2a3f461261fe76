"""Cross-validated training of the project's model.

    PYTHONPATH=src python src/pipelines/training.py --metadata=local --datastore=local run
"""

import os

from metaflow import card, config_expr, current, environment, retry, step

from common.decorators import stamped
from common.model import fit, mse
from common.pipeline import Pipeline
from common.settings import ENV


class Training(Pipeline):
    """Load the data, cross-validate, evaluate, report."""

    @card
    @stamped
    @step
    def start(self):
        """Load the training set and the label names."""
        self.rows = self.training_rows()
        with open(self.project.labels_file) as labels:
            self.labels = [line.strip() for line in labels if line.strip()]
        self.is_production = current.is_production
        self.branch = current.branch_name
        self.project_flow_name = current.project_flow_name
        self.settings = {
            "model_module": self.model_module,
            "storage_root": self.storage_root,
            "learning_rate": self.learning_rate,
            "owner": self.owner,
            "config": dict(self.project),
        }
        self.next(self.featurize)

    @step
    def featurize(self):
        """Scale the features (the feature store needs every retry the project allows)."""
        if current.retry_count < self.project.retries:
            raise RuntimeError(f"feature store not warmed up yet (attempt {current.retry_count})")
        scale = [max(abs(x[i]) for x, _ in self.rows) for i in range(len(self.rows[0][0]))]
        self.rows = [([v / s for v, s in zip(x, scale)], y) for x, y in self.rows]
        self.scale = scale
        self.folds = list(range(self.project.folds))
        self.next(self.fold, foreach="folds")

    @stamped
    @step
    def fold(self):
        """Fit on all folds but one, score on the one left out."""
        self.fold_id = self.input
        k = len(self.folds)
        train = [r for i, r in enumerate(self.rows) if i % k != self.fold_id]
        valid = [r for i, r in enumerate(self.rows) if i % k == self.fold_id]
        self.weights = fit(train, ridge=self.learning_rate)
        self.score = mse(self.weights, valid)
        self.next(self.join_folds)

    @stamped
    @step
    def join_folds(self, inputs):
        """Collect the fold scores."""
        self.scores = [inp.score for inp in inputs]
        self.fold_weights = [inp.weights for inp in inputs]
        self.merge_artifacts(inputs, include=["rows", "labels", "scale", "settings", "is_production", "branch"])
        self.next(self.evaluate)

    @retry(times=config_expr("project.retries"), minutes_between_retries=0)
    @environment(vars=ENV)
    @step
    def evaluate(self):
        """Fit on everything and publish (the registry needs every retry allowed)."""
        if current.retry_count < self.project.retries:
            raise RuntimeError(f"model registry timed out (attempt {current.retry_count})")
        self.env_seen = {name: os.environ.get(name) for name in sorted(ENV)}
        self.weights = fit(self.rows, ridge=self.learning_rate)
        self.train_mse = mse(self.weights, self.rows)
        self.cv_mse = sum(self.scores) / len(self.scores)
        self.published_to = f"{self.storage_root}{self.model_module}/{current.project_flow_name}"
        self.next(self.end)

    @card
    @step
    def end(self):
        """Summarise."""
        self.summary = {
            "cv_mse": round(self.cv_mse, 6),
            "train_mse": round(self.train_mse, 6),
            "labels": self.labels,
            "published_to": self.published_to,
        }
        print(self.summary)


if __name__ == "__main__":
    Training()
