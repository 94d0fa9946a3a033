"""The dataset loaders: embedded digits, CIFAR-10 pickles (restricted unpickler), Fashion-MNIST idx."""

from __future__ import annotations

import gzip
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from backends.datasets import (
    Dataset,
    DatasetSpec,
    RefusedGlobalError,
    load_dataset,
    read_cifar10_batch,
    read_idx,
    stratified_split,
)


def write_cifar_batch(path: Path, n: int = 20, seed: int = 0, labels=None, str_keys: bool = False) -> dict:
    """A CIFAR-10-format batch of ``n`` random images, two of each class by default."""
    rng = np.random.default_rng(seed)
    content = {
        b"batch_label": b"testing batch",
        b"labels": list(np.arange(n) % 10) if labels is None else labels,
        b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
        b"filenames": [f"img_{i}.png".encode() for i in range(n)],
    }
    content[b"labels"] = [int(v) for v in content[b"labels"]]
    if str_keys:
        content = {k.decode(): v for k, v in content.items()}
    with open(path, "wb") as handle:
        pickle.dump(content, handle, protocol=2)
    return content


def py2_cifar_pickle(data: np.ndarray, labels: list[int]) -> bytes:
    """The byte stream Python 2's cPickle writes for an official CIFAR-10 batch (its layout, by hand).

    Python 3 cannot write Python 2 ``str`` objects, so the opcodes are
    spelled out: a dict whose ``data`` is rebuilt by
    ``numpy.core.multiarray._reconstruct`` from a Python 2 string.
    """

    def text(b: bytes) -> bytes:
        return b"U" + bytes([len(b)]) + b if len(b) < 256 else b"T" + struct.pack("<i", len(b)) + b

    def integer(v: int) -> bytes:
        return b"J" + struct.pack("<i", v)

    out = b"\x80\x02}(" + text(b"data")
    out += b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n" + integer(0) + b"\x85"
    out += text(b"b") + b"\x87R"
    out += b"(" + integer(1) + integer(data.shape[0]) + integer(data.shape[1]) + b"\x86"
    out += b"cnumpy\ndtype\n" + text(b"u1") + integer(0) + integer(1) + b"\x87R"
    out += b"(" + integer(3) + text(b"|") + b"NNN" + integer(-1) + integer(-1) + integer(0) + b"tb"
    out += b"\x89" + text(data.tobytes()) + b"tb"
    out += text(b"labels") + b"](" + b"".join(integer(v) for v in labels) + b"eu."
    return out


def dump(path: Path, obj) -> Path:
    with open(path, "wb") as handle:
        pickle.dump(obj, handle, protocol=2)
    return path


# ---------------------------------------------------------------------------- digits
def test_digits_default_split_is_stratified_and_normalised():
    data = load_dataset("digits")
    assert data.x_train.shape == (1438, 1, 8, 8) and data.x_val.shape == (359, 1, 8, 8)
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int64
    assert data.num_classes == 10 and data.in_channels == 1
    counts = np.bincount(data.y_val, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37  # 359 / 10 per class, give or take one
    assert abs(float(data.x_train.mean())) < 1e-4 and abs(float(data.x_train.std()) - 1) < 1e-3
    with pytest.raises(ValueError, match="read-only"):
        data.x_train[0, 0, 0, 0] = 1.0


def test_digits_split_is_deterministic_and_seeded():
    a, b = load_dataset("digits"), load_dataset("digits")
    np.testing.assert_array_equal(a.x_val, b.x_val)
    c = load_dataset("digits", split_seed=1)
    assert not np.array_equal(a.y_val, c.y_val)


def test_explicit_sizes_and_oversized_split():
    data = load_dataset("digits", train_size=100, val_size=50)
    assert len(data.y_train) == 100 and len(data.y_val) == 50
    with pytest.raises(ValueError, match="exceeds the 1797 samples"):
        load_dataset("digits", train_size=1700, val_size=200)


def test_stratified_split_disjoint_and_proportional():
    labels = np.repeat(np.arange(4), [40, 30, 20, 10])
    train, val = stratified_split(labels, train_size=50, val_size=20, seed=3)
    assert len(np.intersect1d(train, val)) == 0
    np.testing.assert_array_equal(np.bincount(labels[val]), [8, 6, 4, 2])
    np.testing.assert_array_equal(np.bincount(labels[train]), [20, 15, 10, 5])


def test_unknown_dataset_and_bad_sizes():
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'"):
        load_dataset("imagenet")
    with pytest.raises(ValueError, match="val_size must be a positive integer"):
        DatasetSpec("digits", val_size=0)
    with pytest.raises(ValueError, match="digits' has no batches"):
        load_dataset("digits", batches=("data_batch_1",))


def test_dataset_rejects_wrong_dtypes():
    x = np.zeros((4, 1, 2, 2), np.float64)
    y = np.zeros(4, np.int64)
    with pytest.raises(ValueError, match="x_train must be a float32 NCHW array"):
        Dataset("toy", x, y, x.astype(np.float32), y, 2)


# ---------------------------------------------------------------------------- CIFAR-10
def test_cifar_loader_shapes_split_and_labels(tmp_path):
    write_cifar_batch(tmp_path / "data_batch_1")
    data = load_dataset("cifar10", tmp_path, train_size=10, val_size=10)
    assert data.x_train.shape == (10, 3, 32, 32) and data.x_val.shape == (10, 3, 32, 32)
    assert data.x_train.dtype == np.float32 and data.y_val.dtype == np.int64
    # two images per class: a stratified 10/10 split puts one of each class on each side
    np.testing.assert_array_equal(np.sort(data.y_train), np.arange(10))
    np.testing.assert_array_equal(np.sort(data.y_val), np.arange(10))
    np.testing.assert_allclose(data.x_train.mean(axis=(0, 2, 3)), 0, atol=1e-5)


def test_cifar_default_split_and_pooled_batches(tmp_path):
    write_cifar_batch(tmp_path / "data_batch_1", seed=1)
    write_cifar_batch(tmp_path / "data_batch_2", seed=2)
    default = load_dataset("cifar10", tmp_path)
    assert (len(default.y_train), len(default.y_val)) == (18, 2)  # POPNAS's 90/10 of one batch
    pooled = load_dataset("cifar10", tmp_path, batches=("data_batch_1", "data_batch_2"))
    assert (len(pooled.y_train), len(pooled.y_val)) == (36, 4)


def test_cifar_pixel_layout_and_str_keys(tmp_path):
    content = write_cifar_batch(tmp_path / "data_batch_1", str_keys=True)
    images, labels = read_cifar10_batch(tmp_path / "data_batch_1")
    raw = content["data"]
    assert images.shape == (20, 3, 32, 32) and images.dtype == np.uint8
    assert images[3, 0, 0, 1] == raw[3, 1]  # red plane first, row-major
    assert images[3, 1, 0, 0] == raw[3, 1024]  # then green
    assert images[3, 2, 31, 31] == raw[3, 3071]  # blue last
    np.testing.assert_array_equal(labels, np.arange(20) % 10)


def test_cifar_python2_official_format(tmp_path):
    data = np.random.default_rng(5).integers(0, 256, (12, 3072), dtype=np.uint8)
    labels = [int(v) for v in np.arange(12) % 10]
    (tmp_path / "test_batch").write_bytes(py2_cifar_pickle(data, labels))
    images, read_labels = read_cifar10_batch(tmp_path / "test_batch")
    np.testing.assert_array_equal(images.reshape(12, -1), data)
    np.testing.assert_array_equal(read_labels, labels)


def test_cifar_nested_official_directory(tmp_path):
    nested = tmp_path / "cifar-10-batches-py"
    nested.mkdir()
    write_cifar_batch(nested / "data_batch_1")
    assert len(load_dataset("cifar10", tmp_path, train_size=10, val_size=10).y_train) == 10


def test_cifar_missing_directory_and_file(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_dataset("cifar10", missing)
    with pytest.raises(FileNotFoundError, match="data_batch_3"):
        load_dataset("cifar10", tmp_path, batches=("data_batch_3",))
    with pytest.raises(ValueError, match="needs data_dir"):
        load_dataset("cifar10")
    with pytest.raises(ValueError, match="unknown batch '../secret'"):
        load_dataset("cifar10", tmp_path, batches=("../secret",))


@pytest.mark.parametrize(
    "content, message",
    [
        ([1, 2, 3], "expected a pickled dict"),
        ({b"data": np.zeros((2, 3072), np.uint8)}, "missing key b'labels'"),
        ({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, r"shape \(N, 3072\)"),
        ({b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]}, "must be a uint8 array"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, "1 labels for 2 images"),
        ({b"data": np.zeros((4, 3072), np.uint8), b"labels": [0, 1, 2, 10]}, "label 10 at row 3"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": ["a", "b"]}, "flat sequence of integers"),
    ],
)
def test_cifar_malformed_files_name_the_file(tmp_path, content, message):
    path = dump(tmp_path / "data_batch_1", content)
    with pytest.raises(ValueError, match=message) as info:
        load_dataset("cifar10", tmp_path)
    assert str(path) in str(info.value)


def test_cifar_truncated_file(tmp_path):
    write_cifar_batch(tmp_path / "data_batch_1")
    path = tmp_path / "data_batch_1"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(ValueError, match="not a readable CIFAR-10 pickle") as info:
        read_cifar10_batch(path)
    assert str(path) in str(info.value)


class _RunsShell:
    """Unpickling this object would run a shell command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class _CallsEval:
    def __reduce__(self):
        return eval, ("1 + 1",)


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_malicious_pickles_are_refused(tmp_path, protocol):
    marker = tmp_path / "pwned"
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": _RunsShell(marker), b"labels": [0]}, protocol=protocol))
    with pytest.raises(RefusedGlobalError, match=r"refused to load global (posix|os)\.system") as info:
        load_dataset("cifar10", tmp_path)
    assert isinstance(info.value, pickle.UnpicklingError) and str(path) in str(info.value)
    assert not marker.exists()
    (tmp_path / "data_batch_2").write_bytes(pickle.dumps([_CallsEval()], protocol=protocol))
    with pytest.raises(pickle.UnpicklingError, match=r"(__builtin__|builtins)\.eval"):
        read_cifar10_batch(tmp_path / "data_batch_2")


def test_codecs_encode_is_limited_to_latin1_bytes(tmp_path):
    # a protocol-2 stream calling _codecs.encode with another codec is refused
    import codecs

    class _Rot13:
        def __reduce__(self):
            return codecs.encode, ("abc", "rot13")

    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": _Rot13()}, protocol=2))
    with pytest.raises(RefusedGlobalError, match="only latin-1 text") as info:
        read_cifar10_batch(path)
    assert str(path) in str(info.value)


# ---------------------------------------------------------------------------- Fashion-MNIST
def write_idx(path: Path, array: np.ndarray, compress: bool) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">i4").tobytes()
    payload = header + array.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(path.with_name(path.name + ".gz"), "wb") as handle:
            handle.write(payload)
    else:
        path.write_bytes(payload)


def test_fashion_mnist_idx_files(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (30, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / "train-images-idx3-ubyte", images, compress=True)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.arange(30) % 10, compress=False)
    np.testing.assert_array_equal(read_idx(tmp_path / "train-images-idx3-ubyte.gz"), images)
    data = load_dataset("fashion_mnist", tmp_path, train_size=20, val_size=10)
    assert data.x_train.shape == (20, 1, 28, 28) and data.x_val.shape == (10, 1, 28, 28)
    np.testing.assert_array_equal(np.sort(data.y_val), np.arange(10))


def test_fashion_mnist_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        load_dataset("fashion_mnist", tmp_path)
    bad = tmp_path / "train-images-idx3-ubyte"
    bad.write_bytes(b"\x00\x00\x0d\x03" + bytes(12))
    with pytest.raises(ValueError, match="bad magic number") as info:
        read_idx(bad)
    assert str(bad) in str(info.value)
    bad.write_bytes(bytes([0, 0, 8, 3]) + np.asarray([2, 4, 4], ">i4").tobytes() + bytes(10))
    with pytest.raises(ValueError, match=r"promises shape \(2, 4, 4\)"):
        read_idx(bad)
    write_idx(bad, np.zeros((3, 4, 4)), compress=False)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.array([0, 1, 12]), compress=False)
    with pytest.raises(ValueError, match="label 12 at row 2"):
        load_dataset("fashion_mnist", tmp_path, train_size=2, val_size=1)
