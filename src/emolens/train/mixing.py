"""MixUp and CutMix: training batches that blend two images and their labels, built in NumPy.

Each batch is mixed with a shuffled copy of itself: MixUp blends whole images (Zhang et al., 2018), CutMix
pastes a rectangle of the partner image (Yun et al., 2019); labels (and class weights) mix in the same
proportion. With both on, each batch uses one of them at random. Mixing happens before the model's own
augmentation layers, on any Keras backend, and each epoch's order and draws come from (seed, epoch) alone,
so a resumed run mixes exactly as an uninterrupted one would.
"""

from __future__ import annotations

import math

import keras
import numpy as np


class MixedBatches(keras.utils.PyDataset):
    """Shuffled (images, one-hot labels, sample weights) batches, mixed by MixUp and/or CutMix.

    Args:
        images: float32 (N, H, W, 1) model input.
        labels: float32 (N, classes) one-hot labels.
        batch_size: images per batch.
        mixup: MixUp's Beta(alpha, alpha) parameter; 0 turns it off.
        cutmix: CutMix's Beta(alpha, alpha) parameter; 0 turns it off.
        class_weights: per-class loss weights, or None.
        seed: the run's seed.
        epoch: the epoch the first pass over the data belongs to (for resumed runs).
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        *,
        batch_size: int,
        mixup: float,
        cutmix: float,
        class_weights: dict[int, float] | None,
        seed: int,
        epoch: int = 0,
    ) -> None:
        super().__init__()
        if not (mixup > 0 or cutmix > 0):
            raise ValueError("MixedBatches needs mixup > 0 or cutmix > 0.")
        self.images, self.labels, self.batch_size = images, labels, batch_size
        self.mixup, self.cutmix, self.seed = mixup, cutmix, seed
        weights = (
            np.ones(labels.shape[1], np.float32)
            if class_weights is None
            else np.array([class_weights[i] for i in range(labels.shape[1])], np.float32)
        )
        self.weights = labels @ weights  # per-image weight from its (one-hot) label
        self._start_epoch(epoch)

    def _start_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.order = np.random.default_rng([self.seed, epoch]).permutation(len(self.images))

    def __len__(self) -> int:
        return math.ceil(len(self.images) / self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        x, y, w = self.images[rows].copy(), self.labels[rows], self.weights[rows]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        partner = rng.permutation(len(rows))
        use_cutmix = self.cutmix > 0 and (self.mixup <= 0 or rng.random() < 0.5)
        lam = float(rng.beta(self.cutmix, self.cutmix) if use_cutmix else rng.beta(self.mixup, self.mixup))
        if use_cutmix:
            height, width = x.shape[1:3]
            cut_h, cut_w = int(height * math.sqrt(1 - lam)), int(width * math.sqrt(1 - lam))
            cy, cx = rng.integers(height), rng.integers(width)
            top, bottom = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, height)
            left, right = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, width)
            x[:, top:bottom, left:right] = x[partner, top:bottom, left:right]
            lam = 1 - (bottom - top) * (right - left) / (height * width)  # the area actually kept
        else:
            x = lam * x + (1 - lam) * x[partner]
        return x, lam * y + (1 - lam) * y[partner], (lam * w + (1 - lam) * w[partner]).astype(np.float32)

    def on_epoch_end(self) -> None:
        self._start_epoch(self.epoch + 1)
