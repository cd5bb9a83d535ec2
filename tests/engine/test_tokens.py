"""The tokenizer works with no network and an empty cache, verifies the official sha256
of its vocabulary, and counts pathological input (1 MB without a space) in bounded time.

These run in a fresh interpreter each, so nothing loaded by other tests can help them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NO_NETWORK = """
import socket

def refuse(*args, **kwargs):
    raise OSError("network access is disabled in this test")

socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
"""


def _run(tmp_path: Path, body: str, timeout: float = 120) -> dict:
    script = NO_NETWORK + textwrap.dedent(
        """
        import json, django
        django.setup()
        """
    ) + textwrap.dedent(body)
    env = {
        key: value for key, value in os.environ.items()
        if key not in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="support.settings",
        SUPPORT_VAR_DIR=str(tmp_path / "var"),
        SUPPORT_SKIP_DOTENV="1",
        PYTHONPATH=str(ROOT),
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_tokenizer_loads_with_no_network_and_an_empty_cache(tmp_path):
    result = _run(tmp_path, """
        import socket
        from conversations.agent.tokens import count_for_model
        text = "Hello, world! Ünïcödé and emoji 🚚 count too."
        try:
            socket.create_connection(("openaipublic.blob.core.windows.net", 443))
            reachable = True
        except OSError:
            reachable = False
        print(json.dumps({"o200k": count_for_model(text, "gpt-4.1-mini"),
                          "cl100k": count_for_model(text, "gpt-4-turbo"), "reachable": reachable}))
    """)

    assert result == {"o200k": 15, "cl100k": 19, "reachable": False}
    assert any((tmp_path / "var" / "tiktoken").iterdir())  # unpacked from the package, locally


def test_a_tampered_cached_vocabulary_is_replaced(tmp_path):
    cache = tmp_path / "var" / "tiktoken"
    cache.mkdir(parents=True)
    # tiktoken's cache file name is the sha1 of the official URL
    (cache / "fb374d419588a4632f3f557e76b4b70aebbca790").write_bytes(b"tampered vocabulary\n")

    result = _run(tmp_path, """
        from conversations.agent.tokens import count_for_model
        print(json.dumps({"o200k": count_for_model("Hello, world! Ünïcödé and emoji 🚚 count too.", "gpt-4o")}))
    """)

    assert result == {"o200k": 15}
    assert b"tampered" not in (cache / "fb374d419588a4632f3f557e76b4b70aebbca790").read_bytes()


def test_a_vocabulary_that_does_not_match_the_official_sha256_is_refused(tmp_path):
    result = _run(tmp_path, """
        from conversations.agent import tokens
        url, _ = tokens._OFFICIAL["o200k_base"]
        tokens._OFFICIAL["o200k_base"] = (url, "0" * 64)  # as if the packaged file were altered
        try:
            tokens.get_encoding("o200k_base")
            outcome = "loaded"
        except tokens.TokenizerUnavailable as exc:
            outcome = str(exc)
        print(json.dumps({"outcome": outcome}))
    """)

    assert "does not match the official sha256" in result["outcome"]


def test_a_megabyte_without_spaces_is_counted_in_bounded_time(tmp_path):
    # The subprocess timeout is only a hang guard: unchunked, tiktoken takes minutes here.
    result = _run(tmp_path, """
        import random, time
        from conversations.agent.tokens import count_for_model
        rng = random.Random(5)
        text = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(1_000_000))
        started = time.monotonic()
        count = count_for_model(text, "gpt-4.1-mini")
        print(json.dumps({"count": count, "length": len(text), "seconds": time.monotonic() - started}))
    """, timeout=180)

    assert 100_000 < result["count"] < result["length"]


def test_the_python_copy_of_the_vocabulary_is_released_and_tokens_are_unchanged(tmp_path):
    # The platform keeps only tiktoken's Rust tokenizer (~28 MB less per encoding and
    # process); counts, ids and decoding must equal those of an untouched Encoding.
    result = _run(tmp_path, """
        import tiktoken
        from django.conf import settings
        from pathlib import Path
        from conversations.agent.tokens import get_encoding
        text = "Hello, world! Ünïcödé and emoji 🚚 count too. Refund order #4521, please."
        ours = get_encoding("o200k_base")
        ranks = tiktoken.load.load_tiktoken_bpe(
            str(Path(settings.VAR_DIR) / "tiktoken" / "fb374d419588a4632f3f557e76b4b70aebbca790"))
        reference = tiktoken.Encoding("reference", pat_str=ours._pat_str, mergeable_ranks=ranks,
                                      special_tokens=ours._special_tokens)
        ids = ours.encode_ordinary(text)
        print(json.dumps({"ids_equal": ids == reference.encode_ordinary(text),
                          "decoded": ours.decode(ids), "n_vocab": ours.n_vocab == reference.n_vocab,
                          "python_ranks": len(ours._mergeable_ranks)}))
    """)

    assert result == {
        "ids_equal": True, "n_vocab": True, "python_ranks": 0,
        "decoded": "Hello, world! Ünïcödé and emoji 🚚 count too. Refund order #4521, please.",
    }
