"""Dataset reading, preprocessing and the shipped calibration subset."""
import gzip

import numpy as np
import pytest

from quant.data import Preprocess, calibration_indices, calibration_pixels, load_array, load_fashion_mnist
from quant.errors import DataError
from tests.conftest import ROOT


def test_shipped_subset_is_the_seeded_choice(fashion_test):
    shipped = np.load(ROOT / "models" / "lenet_calib.npz")["images"]
    train, _ = load_fashion_mnist("train")
    assert shipped.shape == (512, 28, 28)
    assert np.array_equal(shipped, train[calibration_indices(len(train))])
    assert np.array_equal(calibration_pixels(), shipped)


def test_preprocess_defaults_to_pixels_over_255():
    px = np.array([[[0, 255], [51, 102]]], dtype=np.uint8)
    assert np.allclose(Preprocess()(px), np.array([[[[0, 1], [0.2, 0.4]]]]))
    assert np.allclose(Preprocess(0.5, 0.5)(px)[0, 0, 0], [-1, 1])


def test_idx_reader_rejects_bad_files(tmp_path):
    with gzip.open(tmp_path / "t10k-images-idx3-ubyte.gz", "wb") as f:
        f.write(b"\x00\x00\x08\x03" + (10).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2 + b"\x00" * 100)
    with gzip.open(tmp_path / "t10k-labels-idx1-ubyte.gz", "wb") as f:
        f.write(b"\x00\x00\x08\x01" + (10).to_bytes(4, "big") + b"\x00" * 10)
    with pytest.raises(DataError, match="truncated"):
        load_fashion_mnist("test", tmp_path)
    with pytest.raises(DataError, match="no train-images"):
        load_fashion_mnist("train", tmp_path)


def test_load_array_errors(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_array(tmp_path / "x.npy")
    (tmp_path / "x.npy").write_text("nope")
    with pytest.raises(DataError, match=r"not a \.npy"):
        load_array(tmp_path / "x.npy")


def test_idx_gzip_bomb_and_huge_headers_are_refused_unread(tmp_path):
    import tracemalloc
    with gzip.open(tmp_path / "t10k-images-idx3-ubyte.gz", "wb") as f:  # claims 2^32 values
        f.write(b"\x00\x00\x08\x03" + (1 << 16).to_bytes(4, "big") + (256).to_bytes(4, "big") * 2)
        f.write(b"\x00" * (1 << 20))
    with gzip.open(tmp_path / "t10k-labels-idx1-ubyte.gz", "wb") as f:
        f.write(b"\x00\x00\x08\x01" + (10).to_bytes(4, "big") + b"\x00" * 10)
    tracemalloc.start()
    with pytest.raises(DataError, match="past the"):
        load_fashion_mnist("test", tmp_path)
    assert tracemalloc.get_traced_memory()[1] < 16 << 20
    tracemalloc.stop()
