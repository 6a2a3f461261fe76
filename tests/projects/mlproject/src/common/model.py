"""A tiny least-squares linear model in pure Python (no numpy)."""

from __future__ import annotations


def read_rows(text: str, features: list[str]) -> list[tuple[list[float], float]]:
    """CSV text with a header -> [(feature values, target)]."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    header = lines[0].split(",")
    index = {name: header.index(name) for name in features}
    target = header.index("y")
    rows = []
    for line in lines[1:]:
        cells = line.split(",")
        rows.append(([float(cells[index[name]]) for name in features], float(cells[target])))
    return rows


def fit(rows, ridge: float = 0.0) -> list[float]:
    """Weights (bias first) minimising squared error plus ``ridge * |w|^2``."""
    n = len(rows[0][0]) + 1
    a = [[0.0] * n for _ in range(n)]
    b = [0.0] * n
    for x, y in rows:
        v = [1.0, *x]
        for i in range(n):
            b[i] += v[i] * y
            for j in range(n):
                a[i][j] += v[i] * v[j]
    for i in range(1, n):
        a[i][i] += ridge
    return _solve(a, b)


def predict(weights, x) -> float:
    return weights[0] + sum(w * v for w, v in zip(weights[1:], x))


def mse(weights, rows) -> float:
    return sum((predict(weights, x) - y) ** 2 for x, y in rows) / len(rows)


def _solve(a, b):
    n = len(b)
    m = [row[:] + [b[i]] for i, row in enumerate(a)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(m[r][col]))
        m[col], m[pivot] = m[pivot], m[col]
        for r in range(n):
            if r != col:
                f = m[r][col] / m[col][col]
                for c in range(col, n + 1):
                    m[r][c] -= f * m[col][c]
    return [m[i][n] / m[i][i] for i in range(n)]
