"""Project-wide constants."""

BASE_LR = 0.1
# Halved for the small training set (a constant expression: folded when generating).
DEFAULT_LR = BASE_LR / 2
REGION = "eu-west-1"

# Environment of the evaluation step (@environment(vars=ENV)).
ENV = {
    "MLP_STAGE": "evaluate",
    "MLP_REGION": REGION,
    "OMP_NUM_THREADS": "1",
}
