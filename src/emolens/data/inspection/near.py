"""Near-duplicate search: 64-bit perceptual hashes and the pairs of hashes within a Hamming distance.

Each image's 64-bit perceptual hash (pHash) takes the 8x8 lowest frequencies of its 2-D
DCT, one bit per coefficient above their median. Two images are near duplicates when their hashes differ in at
most `threshold` bits (NEAR_THRESHOLD, 4, by default), or when one's mirror-image hash is that close to the
other's. Candidates come from multi-index hashing: hashes within d bits agree exactly on at least one of d+1
bit blocks, so only images that share a block are compared, never all pairs.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from emolens.constants import MAX_NEAR_THRESHOLD
from emolens.errors import EmolensError

_HASH_SIZE = 8


def perceptual_hashes(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """64-bit DCT perceptual hashes of (N, H, W) gray images, and of their mirror images, as uint64 arrays.

    The 8x8 lowest DCT frequencies come from two small matrix products per image; mirroring an image only flips
    the sign of its odd horizontal frequencies, so the mirror hashes cost nothing more.
    """
    size = images.shape[-1]
    k, n = np.arange(_HASH_SIZE)[:, None], np.arange(size)[None, :]
    basis = np.cos(np.pi * (2 * n + 1) * k / (2 * size)).astype(np.float32)  # (8, W): DCT-II rows
    low = basis @ images.astype(np.float32) @ basis.T  # (N, 8, 8)
    mirror = low * np.where(np.arange(_HASH_SIZE) % 2, -1, 1).astype(np.float32)

    def bits(coefficients: np.ndarray) -> np.ndarray:
        flat = coefficients.reshape(len(coefficients), -1)
        above = flat > np.median(flat, axis=1, keepdims=True)
        return np.packbits(above, axis=1, bitorder="little").view("<u8")[:, 0]

    return bits(low), bits(mirror)


def _check_threshold(threshold: int) -> None:
    if not 0 <= threshold <= MAX_NEAR_THRESHOLD:
        raise EmolensError(
            f"the near-duplicate threshold must be between 0 and {MAX_NEAR_THRESHOLD} bits (received {threshold})."
        )


def hamming_pairs(
    hashes: np.ndarray, queries: np.ndarray, threshold: int, *, same: bool, chunk: int = 4096
) -> np.ndarray:
    """All (query, hash) index pairs whose 64-bit hashes differ in at most `threshold` bits, as an (M, 2) array.

    With same=True the queries are the hashes themselves and each pair is given once (i < j). Queries go in
    chunks, so memory stays bounded however many candidates share a block.
    """
    _check_threshold(threshold)
    # threshold + 1 blocks of (nearly) equal width covering all 64 bits.
    edges = [round(64 * b / (threshold + 1)) for b in range(threshold + 2)]
    blocks = []
    for low, high in pairwise(edges):
        keys = (hashes >> np.uint64(low)) & np.uint64((1 << (high - low)) - 1)
        order = np.argsort(keys, kind="stable")
        blocks.append((low, high, order, keys[order]))
    found = [np.zeros((0, 2), np.int64)]
    for first in range(0, len(queries), chunk):
        part = queries[first : first + chunk]
        for low, high, order, sorted_keys in blocks:
            query_keys = (part >> np.uint64(low)) & np.uint64((1 << (high - low)) - 1)
            start = np.searchsorted(sorted_keys, query_keys, "left")
            counts = np.searchsorted(sorted_keys, query_keys, "right") - start
            query_index = np.repeat(np.arange(len(part)), counts)
            offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
            hash_index = order[np.repeat(start, counts) + offsets]
            keep = np.bitwise_count(part[query_index] ^ hashes[hash_index]) <= threshold
            query_index = query_index + first
            if same:
                keep &= query_index < hash_index
            found.append(np.stack([query_index[keep], hash_index[keep]], axis=1))
    return np.unique(np.concatenate(found), axis=0)


def _components(pairs: np.ndarray, count: int) -> np.ndarray:
    """Component label of each of `count` nodes in the undirected graph whose edges are `pairs`."""
    graph = coo_matrix((np.ones(len(pairs), np.int8), (pairs[:, 0], pairs[:, 1])), shape=(count, count))
    return connected_components(graph, directed=False)[1]
