"""The offline MiniLM model (`conversations/knowledge/minilm.py`): the vectors it gives
are the ones stored beside this test (computed before the weights were mapped instead
of copied), a text's vector does not depend on what it was batched with, and loading
the model puts its weights in a shared read-only file mapping, not on the heap.

The memory checks run in a fresh interpreter, so nothing the suite loaded is counted."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from conversations.knowledge.minilm import MAX_TOKENS, model

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = json.loads((Path(__file__).parent / "minilm_reference.json").read_text())


def reference_vectors() -> np.ndarray:
    return np.array([np.frombuffer(base64.b64decode(v), dtype="<f4") for v in REFERENCE["vectors"]])


def test_the_vectors_are_the_stored_reference_ones():
    texts = REFERENCE["texts"]
    # An empty text, a French one and one past the model's 128 tokens (cut) are among them.
    assert "" in texts and len(model().tokenizer.encode(texts[-1]).ids) == MAX_TOKENS

    vectors = model().embed(texts)

    assert vectors.dtype == np.float32 and vectors.shape == (len(texts), 384)
    assert np.abs(vectors - reference_vectors()).max() < 1e-6


def test_a_texts_vector_does_not_depend_on_its_batch():
    # 40 texts of up to 128 tokens: several forward passes of different padded lengths.
    texts = [" ".join(["refund", "parcel", "invoice", "password"][i % 4] for _ in range(3 * i + 1)) for i in range(40)]
    texts += REFERENCE["texts"]

    batched = model().embed(texts)
    alone = np.vstack([model().embed([text]) for text in texts])

    assert np.abs(batched - alone).max() < 1e-6
    assert np.abs(batched[-len(REFERENCE["texts"]) :] - reference_vectors()).max() < 1e-6


def test_the_weights_are_a_read_only_view_of_the_file():
    weights = [model().word, *(matrix for layer in model().layers for matrix, _ in layer.values())]

    assert not any(w.flags.writeable for w in weights)
    with pytest.raises(ValueError, match="read-only"):
        model().word[0, 0] = 1.0


def _measure(body: str) -> dict:
    environment = {
        **os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
    }
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(body)], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_loading_maps_the_weights_instead_of_copying_them_onto_the_heap():
    result = _measure("""
        import json, tracemalloc
        from pathlib import Path
        import numpy, tokenizers
        from conversations.knowledge import minilm

        def status(field):
            line = next(l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith(field + ":"))
            return int(line.split()[1]) // 1024

        anon = status("RssAnon")
        m = minilm.MiniLM()
        loaded = status("RssAnon") - anon
        weights_file = str(minilm.model_dir() / "model.safetensors")
        maps = Path("/proc/self/maps").read_text().splitlines()
        mapped_read_only = any(l.endswith(weights_file) and l.split()[1].startswith("r-") for l in maps)
        tracemalloc.start()
        m.embed(["word%d " % i * 200 for i in range(32)])  # 32 texts of 128 tokens
        peak = tracemalloc.get_traced_memory()[1] // 2**20
        print(json.dumps({"anon_mb": loaded, "mapped": mapped_read_only, "peak_mb": peak}))
    """)

    # Copying the weights (and their transposes) cost ~135 MB of heap; the tokenizer is ~9.
    assert result["mapped"] is True
    assert result["anon_mb"] < 30, result
    # Activations of one embed call at the model's largest input: ~250 MB in one pass.
    assert result["peak_mb"] < 60, result
