"""2-D maps of thought vectors: PCA (default) or UMAP (the optional `umap` extra, umap-learn).

PCA: the vectors centred and projected on their top two right singular vectors (numpy SVD); the
signs are fixed so that each axis' largest-magnitude loading is positive (the map does not flip between
runs). UMAP: McInnes, Healy & Melville, "UMAP: Uniform Manifold Approximation and Projection", 2018.
"""

from __future__ import annotations

import numpy as np

from loopynet.errors import InputError

METHODS = ("pca", "umap")


def project(vectors: np.ndarray, method: str = "pca", seed: int = 0) -> tuple[np.ndarray, dict]:
    """vectors (N, D) -> (points (N, 2) float64, info): info["explained_variance_ratio"] for PCA.

    Raises:
        ValueError: unknown method, fewer than 2 documents, or umap-learn not installed for "umap".
    """
    if method not in METHODS:
        raise InputError(f"projection must be one of {METHODS}, got {method!r}")
    vectors = np.asarray(vectors, dtype=np.float64)
    if len(vectors) < 2:
        raise InputError(f"a map needs at least 2 documents, got {len(vectors)}")
    if method == "umap":
        try:
            import umap
        except ImportError:
            raise InputError("--projection umap needs umap-learn: pip install 'loopynet[umap]'") from None
        return umap.UMAP(n_components=2, random_state=seed).fit_transform(vectors).astype(np.float64), {}
    centred = vectors - vectors.mean(0)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    axes = vt[:2]  # (2, D)
    axes *= np.sign(axes[np.arange(len(axes)), np.abs(axes).argmax(1)])[:, None]
    points = centred @ axes.T
    if points.shape[1] < 2:  # D == 1
        points = np.column_stack([points, np.zeros(len(points))])
    variance = singular**2
    return points, {"explained_variance_ratio": (variance[:2] / max(variance.sum(), 1e-300)).tolist()}
