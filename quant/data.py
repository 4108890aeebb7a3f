"""Datasets: Fashion-MNIST IDX files (Debian package dataset-fashion-mnist, or
--data DIR), the calibration subset, and explicit input preprocessing."""
from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from quant.errors import DataError

DEFAULT_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
CALIBRATION_COUNT = 512
CALIBRATION_SEED = 0
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
          "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


@dataclass(frozen=True)
class Preprocess:
    """x = (pixel / 255 - mean) / std, NCHW float32. Defaults: pixels/255, no mean/std."""
    mean: float = 0.0
    std: float = 1.0

    def __post_init__(self) -> None:
        if not self.std > 0:
            raise DataError(f"--std must be positive, not {self.std}")

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        x = pixels.astype(np.float32)[:, None, :, :] / np.float32(255.0)
        return (x - np.float32(self.mean)) / np.float32(self.std)


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as err:
        raise DataError(f"{path}: cannot read IDX file ({err})") from None
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise DataError(f"{path}: not an unsigned-byte IDX file")
    ndim = data[3]
    dims = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise DataError(f"{path}: truncated IDX file ({body.size} of {int(np.prod(dims))} values)")
    return body.reshape(dims)


def _find(directory: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem, stem.replace("-idx", ".idx")):
        if (directory / name).is_file():
            return directory / name
    raise DataError(f"{directory}: no {stem}[.gz] (install the Debian package dataset-fashion-mnist "
                    "or pass --data DIR with the IDX files)")


def load_fashion_mnist(split: str = "test", directory: Path | str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 28, 28), labels uint8 (N,)) of the 'train' or 'test' split."""
    directory = Path(directory) if directory is not None else DEFAULT_FASHION_DIR
    if not directory.is_dir():
        raise DataError(f"{directory}: no such dataset folder")
    images_stem, labels_stem = _FILES[split]
    images = _read_idx(_find(directory, images_stem))
    labels = _read_idx(_find(directory, labels_stem))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(f"{directory}: {split} images {images.shape} and labels {labels.shape} do not match")
    return images, labels


def fashion_available(directory: Path | str | None = None) -> bool:
    try:
        load_fashion_mnist("test", directory)
    except DataError:
        return False
    return True


def calibration_indices(n_train: int, count: int = CALIBRATION_COUNT, seed: int = CALIBRATION_SEED) -> np.ndarray:
    """The fixed, seeded choice of calibration images from the training split."""
    return np.sort(np.random.default_rng(seed).choice(n_train, size=count, replace=False))


def calibration_pixels(directory: Path | str | None = None, shipped: Path | None = None) -> np.ndarray:
    """512 training images (uint8): from the dataset when present, else (no --data given) the shipped subset."""
    try:
        images, _ = load_fashion_mnist("train", directory)
        return images[calibration_indices(len(images))]
    except DataError:
        if directory is None and shipped is not None and shipped.is_file():
            return np.load(shipped)["images"]
        raise


def load_array(path: Path | str) -> np.ndarray:
    """A float calibration/input array from .npy or .npz (first array)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        data = np.load(path)
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: not a .npy/.npz array ({err})") from None
    return np.asarray(data[data.files[0]] if hasattr(data, "files") else data, dtype=np.float32)
