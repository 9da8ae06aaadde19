"""Medians and percentiles without numpy."""


def median(values):
    v = sorted(x for x in values if x is not None)
    if not v:
        return None
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def percentile(values, p):
    """Nearest-rank percentile (p in 0..100) of `values`."""
    v = sorted(values)
    if not v:
        return None
    k = max(0, min(len(v) - 1, -(-p * len(v) // 100) - 1))
    return v[int(k)]
