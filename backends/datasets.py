"""Image classification data for the training backend, read from local files only.

Three sources, chosen by name:

``digits`` (the default, embedded)
    scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes, one
    channel). It ships with scikit-learn, so the backend trains without any
    data on disk; small enough for unit tests and CPU benchmarks.
``cifar10``
    CIFAR-10 in the standard "python version" layout: ``data_batch_1`` ..
    ``data_batch_5`` and ``test_batch`` in ``data_dir`` (or in its
    ``cifar-10-batches-py`` sub-directory), each a pickled dict whose
    ``b"data"`` is a ``uint8`` array of shape ``(N, 3072)`` (1,024 red, then
    green, then blue values of a 32x32 image, row-major) and ``b"labels"`` a
    list of ``N`` ints in ``0..9``. The files are read with
    :class:`RestrictedUnpickler`, which rebuilds numpy arrays and nothing
    else, so a crafted file cannot run code.
``fashion_mnist``
    Fashion-MNIST in the standard idx layout (``train-images-idx3-ubyte``,
    ``train-labels-idx1-ubyte``, ``t10k-...``, each optionally ``.gz``).

Nothing is ever downloaded: a missing directory or file is an error naming it.

Choices the papers leave open
    The images of the named ``batches`` are pooled and split once into a
    training and a validation set by a seeded, stratified split (POPNAS's
    ablation split one CIFAR-10 batch 9,000/1,000; that is the ``cifar10``
    default). Pixels are scaled to ``[0, 1]`` and standardised per channel
    with the training split's mean and standard deviation (the validation
    split never informs the statistics). No data augmentation.
"""

from __future__ import annotations

import gzip
import math
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from harness.validation import check_integer

try:  # numpy >= 2 (and 1.26, for forward compatibility of pickles)
    from numpy._core.multiarray import _reconstruct as _np_reconstruct
    from numpy._core.multiarray import scalar as _np_scalar
except ImportError:  # pragma: no cover - older numpy
    from numpy.core.multiarray import _reconstruct as _np_reconstruct
    from numpy.core.multiarray import scalar as _np_scalar

#: CIFAR-10 batch files, in the order of the official archive.
CIFAR10_BATCHES: tuple[str, ...] = (
    "data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch",
)

#: Fashion-MNIST parts: part name -> (images file, labels file), without the optional ``.gz``.
FASHION_MNIST_PARTS: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "t10k": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


@dataclass(frozen=True, eq=False)
class Dataset:
    """A training and a validation split, images as NCHW ``float32``, labels as ``int64``."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    num_classes: int

    def __post_init__(self) -> None:
        for split, x, y in (("train", self.x_train, self.y_train), ("val", self.x_val, self.y_val)):
            if x.ndim != 4 or x.dtype != np.float32:
                raise ValueError(
                    f"dataset {self.name!r}: x_{split} must be a float32 NCHW array, "
                    f"got {x.dtype} of shape {x.shape}"
                )
            if y.shape != (len(x),) or y.dtype != np.int64:
                raise ValueError(
                    f"dataset {self.name!r}: y_{split} must be int64 of shape ({len(x)},), "
                    f"got {y.dtype} of shape {y.shape}"
                )
            if len(y) and not (0 <= y.min() and y.max() < self.num_classes):
                raise ValueError(
                    f"dataset {self.name!r}: y_{split} has labels outside 0..{self.num_classes - 1}"
                )
            # shared between evaluations (cached per process): nobody may modify them
            x.setflags(write=False)
            y.setflags(write=False)
        if self.x_train.shape[1:] != self.x_val.shape[1:]:
            raise ValueError(
                f"dataset {self.name!r}: train images {self.x_train.shape[1:]} and validation "
                f"images {self.x_val.shape[1:]} differ in shape"
            )

    @property
    def in_channels(self) -> int:
        """Number of image channels."""
        return int(self.x_train.shape[1])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(channels, height, width)`` of one image."""
        return tuple(int(v) for v in self.x_train.shape[1:])  # type: ignore[return-value]


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset comes from and how it is split; hashable, so loads can be cached.

    Parameters
    ----------
    name:
        ``"digits"``, ``"cifar10"`` or ``"fashion_mnist"``.
    data_dir:
        directory of the files (required for ``cifar10`` and ``fashion_mnist``).
    batches:
        parts pooled before the split: CIFAR-10 batch file names (default
        ``("data_batch_1",)``) or Fashion-MNIST parts ``"train"``/``"t10k"``
        (default ``("train",)``); unused for ``digits``.
    train_size, val_size:
        split sizes; ``val_size=None`` takes the dataset's default fraction
        of the pool (digits 20 %, the others 10 %), ``train_size=None``
        takes the rest.
    split_seed:
        seed of the stratified split.
    """

    name: str = "digits"
    data_dir: str | Path | None = None  # stored as str
    batches: tuple[str, ...] | None = None
    train_size: int | None = None
    val_size: int | None = None
    split_seed: int = 0

    def __post_init__(self) -> None:
        if self.name not in _SOURCES:
            raise ValueError(f"unknown dataset {self.name!r}; choose one of {sorted(_SOURCES)}")
        for key in ("train_size", "val_size"):
            check_integer(key, getattr(self, key), optional=True)
        if self.batches is not None:
            if isinstance(self.batches, str):
                raise ValueError(f"batches must be a sequence of names, got the string {self.batches!r}")
            object.__setattr__(self, "batches", tuple(self.batches))
        if self.data_dir is not None:
            object.__setattr__(self, "data_dir", str(self.data_dir))

    def load(self) -> Dataset:
        """Read, split and normalise the data."""
        source = _SOURCES[self.name]
        images, labels = source.read(self)
        return _split_and_normalise(self, images, labels, source.val_fraction, source.num_classes)


def load_dataset(
    name: str = "digits",
    data_dir: str | Path | None = None,
    batches: tuple[str, ...] | None = None,
    train_size: int | None = None,
    val_size: int | None = None,
    split_seed: int = 0,
) -> Dataset:
    """The dataset ``name``, read from ``data_dir``, split and normalised (see :class:`DatasetSpec`)."""
    return DatasetSpec(name, data_dir, batches, train_size, val_size, split_seed).load()


# ---------------------------------------------------------------------------- splitting
def stratified_split(
    labels: np.ndarray, train_size: int, val_size: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, val)`` of a seeded split that keeps class proportions in both parts.

    Samples are shuffled, ranked within their class, and ordered by their
    fractional rank ``(rank + 1/2) / class size``: any prefix of that order
    is close to stratified, so the first ``val_size`` go to validation and
    the next ``train_size`` to training. Unlike scikit-learn's splitter it
    accepts any sizes, even fewer validation samples than classes.
    """
    n = len(labels)
    if train_size + val_size > n:
        raise ValueError(
            f"train_size={train_size} + val_size={val_size} exceeds the {n} samples available"
        )
    order = np.random.default_rng(seed).permutation(n)
    shuffled = labels[order]
    by_class = np.argsort(shuffled, kind="stable")
    counts = np.bincount(shuffled)
    starts = np.cumsum(counts) - counts
    rank = np.empty(n, np.int64)
    rank[by_class] = np.arange(n) - np.repeat(starts, counts)
    fraction = (rank + 0.5) / counts[shuffled]
    picked = order[np.argsort(fraction, kind="stable")]
    return np.sort(picked[val_size: val_size + train_size]), np.sort(picked[:val_size])


def _split_and_normalise(
    spec: DatasetSpec, images: np.ndarray, labels: np.ndarray, val_fraction: float, num_classes: int
) -> Dataset:
    n = len(labels)
    val_size = spec.val_size if spec.val_size is not None else max(1, round(val_fraction * n))
    train_size = spec.train_size if spec.train_size is not None else n - val_size
    if train_size < 1:
        raise ValueError(f"dataset {spec.name!r}: val_size={val_size} leaves no training images of {n}")
    train, val = stratified_split(labels, train_size, val_size, spec.split_seed)
    x_train = images[train].astype(np.float32) / 255.0
    x_val = images[val].astype(np.float32) / 255.0
    mean = x_train.mean(axis=(0, 2, 3), keepdims=True)
    std = x_train.std(axis=(0, 2, 3), keepdims=True)
    std[std == 0] = 1.0  # a constant channel carries no information; leave it centred
    return Dataset(
        name=spec.name,
        x_train=(x_train - mean) / std,
        y_train=labels[train].astype(np.int64),
        x_val=(x_val - mean) / std,
        y_val=labels[val].astype(np.int64),
        num_classes=num_classes,
    )


# ---------------------------------------------------------------------------- sources
@dataclass(frozen=True)
class _Source:
    """How to read one named dataset: ``read`` gives ``uint8`` NCHW images and integer labels."""

    read: Callable[[DatasetSpec], tuple[np.ndarray, np.ndarray]]
    num_classes: int
    val_fraction: float


def _read_digits(spec: DatasetSpec) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    if spec.batches is not None:
        raise ValueError(f"dataset 'digits' has no batches; got batches={spec.batches!r}")
    digits = load_digits()
    # pixel values are 0..16; scale to the 0..255 range the other sources use
    images = np.rint(digits.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    return images, digits.target.astype(np.int64)


def _require_dir(spec: DatasetSpec) -> Path:
    if spec.data_dir is None:
        raise ValueError(
            f"dataset {spec.name!r} needs data_dir, the local directory holding its files "
            "(this harness never downloads data)"
        )
    directory = Path(spec.data_dir)
    if not directory.is_dir():
        raise FileNotFoundError(f"data directory {str(directory)!r} for dataset {spec.name!r} does not exist")
    return directory


def _check_parts(spec: DatasetSpec, known: tuple[str, ...], default: tuple[str, ...]) -> tuple[str, ...]:
    parts = spec.batches if spec.batches is not None else default
    if not parts:
        raise ValueError(f"dataset {spec.name!r}: batches must name at least one of {known}")
    unknown = [p for p in parts if p not in known]
    if unknown:
        raise ValueError(f"dataset {spec.name!r}: unknown batch {unknown[0]!r}; choose from {known}")
    if len(set(parts)) != len(parts):
        raise ValueError(f"dataset {spec.name!r}: batches {parts!r} name a batch twice")
    return parts


def _read_cifar10(spec: DatasetSpec) -> tuple[np.ndarray, np.ndarray]:
    directory = _require_dir(spec)
    nested = directory / "cifar-10-batches-py"
    if not (directory / "data_batch_1").exists() and nested.is_dir():
        directory = nested
    parts = _check_parts(spec, CIFAR10_BATCHES, ("data_batch_1",))
    loaded = [read_cifar10_batch(directory / part) for part in parts]
    return np.concatenate([x for x, _ in loaded]), np.concatenate([y for _, y in loaded])


def read_cifar10_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, 3, 32, 32)`` uint8 and labels ``(N,)`` int64 of one CIFAR-10 batch file.

    The file is unpickled with :class:`RestrictedUnpickler`; keys may be
    bytes (the official files) or str (files re-pickled under Python 3).
    Errors name the file and what is wrong with it.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CIFAR-10 batch file {str(path)!r} does not exist")
    with open(path, "rb") as handle:
        try:
            content = RestrictedUnpickler(handle, encoding="bytes").load()
        except RefusedGlobalError as exc:
            raise RefusedGlobalError(f"{str(path)!r}: {exc}") from None
        except Exception as exc:  # truncated or garbled streams raise many kinds of errors
            raise ValueError(f"{str(path)!r} is not a readable CIFAR-10 pickle: {exc}") from exc
    if not isinstance(content, dict):
        raise ValueError(
            f"{str(path)!r}: expected a pickled dict with keys b'data' and b'labels', "
            f"got {type(content).__name__}"
        )
    data = _dict_entry(content, "data", path)
    labels = _dict_entry(content, "labels", path)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        described = f"{data.dtype} array of shape {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise ValueError(f"{str(path)!r}: 'data' must be a uint8 array of shape (N, 3072), got {described}")
    try:
        label_array = np.asarray(labels)
    except Exception as exc:
        raise ValueError(f"{str(path)!r}: 'labels' is not a sequence of integers: {exc}") from exc
    if label_array.ndim != 1 or label_array.dtype.kind not in "iu":
        raise ValueError(
            f"{str(path)!r}: 'labels' must be a flat sequence of integers, got {label_array.dtype} "
            f"of shape {label_array.shape}"
        )
    if len(label_array) != len(data):
        raise ValueError(f"{str(path)!r}: {len(label_array)} labels for {len(data)} images")
    _check_label_range(label_array, 10, str(path))
    return data.reshape(-1, 3, 32, 32), label_array.astype(np.int64)


def _dict_entry(content: dict, key: str, path: Path) -> Any:
    for candidate in (key.encode(), key):
        if candidate in content:
            return content[candidate]
    raise ValueError(
        f"{str(path)!r}: missing key b'{key}' (found keys {sorted(map(repr, content))})"
    )


def _check_label_range(labels: np.ndarray, num_classes: int, where: str) -> None:
    bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if len(bad):
        raise ValueError(
            f"{where}: label {int(labels[bad[0]])} at row {int(bad[0])} is outside 0..{num_classes - 1}"
        )


def _latin1_bytes(text: str, encoding: str) -> bytes:
    """What ``_codecs.encode`` does in protocol-2 pickles written by Python 3: bytes from latin-1 text.

    Only that one use is allowed; any other argument is refused.
    """
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise RefusedGlobalError(
            f"refused _codecs.encode({type(text).__name__}, {encoding!r}); only latin-1 text is allowed"
        )
    return text.encode("latin-1")


class RefusedGlobalError(pickle.UnpicklingError):
    """A pickle referenced a global that :class:`RestrictedUnpickler` does not allow."""


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that can rebuild numpy arrays and plain containers, and nothing else.

    ``find_class`` is the only way a pickle reaches a Python callable
    (``GLOBAL``, ``STACK_GLOBAL``, ``INST``, ``OBJ`` and extension codes all
    go through it), so allowing the few numpy names needed for an
    ``ndarray`` and refusing every other global keeps a crafted file from
    calling ``os.system`` and the like. ``_codecs.encode`` (how Python 3
    writes ``bytes`` in protocol 2) resolves to a guard that only turns
    latin-1 text into bytes.
    """

    #: ``(module, name)`` -> the object it may resolve to.
    ALLOWED: dict[tuple[str, str], Any] = {
        ("numpy.core.multiarray", "_reconstruct"): _np_reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _np_reconstruct,
        ("numpy.core.multiarray", "scalar"): _np_scalar,
        ("numpy._core.multiarray", "scalar"): _np_scalar,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_bytes,
    }

    def find_class(self, module: str, name: str) -> Any:
        """The allowed numpy object ``module.name``; :class:`RefusedGlobalError` for anything else."""
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise RefusedGlobalError(
                f"refused to load global {module}.{name}; only numpy arrays "
                "may appear in a dataset pickle"
            ) from None


def _read_fashion_mnist(spec: DatasetSpec) -> tuple[np.ndarray, np.ndarray]:
    directory = _require_dir(spec)
    parts = _check_parts(spec, tuple(FASHION_MNIST_PARTS), ("train",))
    images, labels = [], []
    for part in parts:
        image_name, label_name = FASHION_MNIST_PARTS[part]
        part_images = read_idx(_idx_path(directory, image_name))
        part_labels = read_idx(_idx_path(directory, label_name))
        if part_images.ndim != 3 or part_labels.ndim != 1 or len(part_images) != len(part_labels):
            raise ValueError(
                f"Fashion-MNIST part {part!r} in {str(directory)!r}: expected images (N, H, W) and "
                f"labels (N,), got {part_images.shape} and {part_labels.shape}"
            )
        _check_label_range(part_labels, 10, f"{str(directory)!r} {label_name}")
        images.append(part_images[:, None])
        labels.append(part_labels.astype(np.int64))
    return np.concatenate(images), np.concatenate(labels)


def _idx_path(directory: Path, stem: str) -> Path:
    for candidate in (directory / stem, directory / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"idx file {str(directory / stem)!r} (or .gz) does not exist")


def read_idx(path: str | Path) -> np.ndarray:
    """The ``uint8`` array of an idx file (optionally gzip-compressed), checked against its header.

    The header is two zero bytes, the type code ``0x08`` (unsigned byte),
    the number of dimensions and one big-endian int32 per dimension.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError) as exc:
        raise ValueError(f"{str(path)!r} could not be read as an idx file: {exc}") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{str(path)!r}: not an unsigned-byte idx file (bad magic number {raw[:4]!r})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise ValueError(f"{str(path)!r}: truncated idx header ({ndim} dimensions)")
    shape = tuple(int(v) for v in np.frombuffer(raw, ">i4", count=ndim, offset=4))
    if len(raw) - header != math.prod(shape):
        raise ValueError(
            f"{str(path)!r}: header promises shape {shape} ({math.prod(shape)} bytes) but the file "
            f"holds {len(raw) - header}"
        )
    return np.frombuffer(raw, np.uint8, offset=header).reshape(shape)


_SOURCES: dict[str, _Source] = {
    "digits": _Source(_read_digits, num_classes=10, val_fraction=0.2),
    "cifar10": _Source(_read_cifar10, num_classes=10, val_fraction=0.1),
    "fashion_mnist": _Source(_read_fashion_mnist, num_classes=10, val_fraction=0.1),
}
