"""Datasets: Fashion-MNIST IDX files (Debian package dataset-fashion-mnist, or
--data DIR), the calibration subset, and explicit input preprocessing."""
from __future__ import annotations

import gzip
import math
import warnings
import zipfile
import zlib
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
        if not math.isfinite(self.mean):
            raise DataError(f"--mean must be a finite number, not {self.mean}")
        if not (math.isfinite(self.std) and self.std > 0):
            raise DataError(f"--std must be a positive finite number, not {self.std}")

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        x = pixels.astype(np.float32)[:, None, :, :] / np.float32(255.0)
        return (x - np.float32(self.mean)) / np.float32(self.std)


MAX_IDX_BYTES = 1 << 30  # an IDX image/label file declaring more values than this is refused unread


def _read_idx(path: Path) -> np.ndarray:
    """An unsigned-byte IDX file (optionally gzip), reading only the bytes its header declares: a
    gzip bomb or a header claiming billions of values is refused, never decompressed into memory."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            head = f.read(4)
            if len(head) < 4 or head[:2] != b"\x00\x00" or head[2] != 0x08 or not 1 <= head[3] <= 4:
                raise DataError(f"{path}: not an unsigned-byte IDX file")
            dims = tuple(int.from_bytes(f.read(4), "big") for _ in range(head[3]))
            count = math.prod(dims)
            if count > MAX_IDX_BYTES:
                raise DataError(f"{path}: declares {count:,} values, past the {MAX_IDX_BYTES:,} limit")
            body = f.read(count)
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"{path}: cannot read IDX file ({err})") from None
    if len(body) != count:
        raise DataError(f"{path}: truncated IDX file ({len(body)} of {count} values)")
    return np.frombuffer(body, dtype=np.uint8).reshape(dims)


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


MAX_ARRAY_BYTES = 4 << 30  # calibration/input arrays: refused past this many bytes (float32) before reading


def load_array(path: Path | str, max_bytes: int = MAX_ARRAY_BYTES) -> np.ndarray:
    """A finite float32 calibration/input array from .npy or .npz (its first array), size-checked
    from the header (and the zip directory) before anything is decompressed or read."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                members = [i for i in archive.infolist() if i.filename.endswith(".npy")]
                if not members:
                    raise DataError(f"{path}: .npz holds no arrays")
                with archive.open(members[0]) as f:
                    array = _read_npy(path, f, members[0].file_size, max_bytes)
        else:
            with open(path, "rb") as f:
                array = _read_npy(path, f, path.stat().st_size, max_bytes)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise DataError(f"{path}: not a .npy/.npz array ({type(err).__name__}: "
                        f"{str(err).splitlines()[0][:120] if str(err) else ''})") from None
    if array.dtype.kind not in "fiub":
        raise DataError(f"{path}: array of {array.dtype} values; calibration inputs are real numbers")
    array = array.astype(np.float32)
    bad = int(np.count_nonzero(~np.isfinite(array)))
    if bad:
        raise DataError(f"{path}: {bad:,} of {array.size:,} values are NaN or infinite")
    return array


def _read_npy(path: Path, f, stored_bytes: int, max_bytes: int) -> np.ndarray:
    """Read one .npy stream after checking its header: shape and dtype give the size up front."""
    version = np.lib.format.read_magic(f)
    readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
    if version not in readers:
        raise DataError(f"{path}: .npy format version {version} is not supported")
    shape, fortran, dtype = readers[version](f)
    count = math.prod(shape)
    if dtype.hasobject:
        raise DataError(f"{path}: holds Python objects; only numeric arrays are read (no pickle)")
    if count * max(dtype.itemsize, 4) > max_bytes:
        raise DataError(f"{path}: array of shape {shape} needs {count * 4 / 2**30:.1f} GiB as float32 "
                        f"(limit {max_bytes / 2**30:.0f} GiB)")
    data = f.read(count * dtype.itemsize)
    if len(data) != count * dtype.itemsize:
        raise DataError(f"{path}: truncated array ({len(data):,} of {count * dtype.itemsize:,} bytes)")
    return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")


def check_calibration(x: np.ndarray, source: str, preprocessed_range: tuple[float, float] | None = None) -> None:
    """Warn when calibration inputs look like raw 0..255 pixels rather than the preprocessed inputs
    the model takes (x = (pixel/255 - mean)/std), with the observed range."""
    lo, hi = float(x.min()), float(x.max())
    integral = bool(np.all(x == np.round(x)))
    raw = hi > 1.5 and lo >= 0 and hi <= 255 and integral
    far = preprocessed_range is not None and (hi > 4 * max(abs(preprocessed_range[1]), 1.0)
                                              or lo < -4 * max(abs(preprocessed_range[0]), 1.0))
    if raw or far:
        expected = "" if preprocessed_range is None else \
            f" (the documented preprocessing gives [{preprocessed_range[0]:.3g}, {preprocessed_range[1]:.3g}])"
        warnings.warn(f"{source}: calibration values span [{lo:.3g}, {hi:.3g}]"
                      f"{', whole numbers: raw 0..255 pixels?' if raw else ''} hwsim expects preprocessed model "
                      f"inputs, x = (pixel/255 - mean)/std{expected}", DataWarning, stacklevel=2)


class DataWarning(UserWarning):
    """Calibration data that looks unlike the model's inputs."""
