"""A small slice of the encrypted-inference example (examples/digits.py)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "digits.py"


def load_example():
    spec = importlib.util.spec_from_file_location("digits_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    # Registered first: dataclasses look their module up in sys.modules.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_encrypted_outputs_equal_clear_outputs():
    digits = load_example()
    r = digits.run(limit=48, hidden=8, epochs=120, seed=1)
    assert r.images == 48
    # Exact agreement, image by image and output by output.
    assert r.encrypted_logits.shape == (48, 10)
    assert np.array_equal(r.encrypted_logits, r.clear_logits)
    assert r.encrypted_accuracy == r.clear_accuracy
    # The plaintext modulus covers every possible output, with room.
    assert r.params.plaintext_modulus > 2 * r.bound
    assert r.noise_budget > 0
    # Even briefly trained, the quantized network is far above chance (0.1).
    assert r.clear_accuracy > 0.6


def test_bound_covers_extreme_inputs():
    digits = load_example()
    x_train, y_train, _, _ = digits.split(0)
    model = digits.quantize(digits.train(x_train[:200], y_train[:200], 6, 30, 0), 15, 15)
    bound = model.bound()
    extremes = np.array([np.zeros(64), np.full(64, 16)] + [np.random.default_rng(i).integers(0, 17, 64) for i in range(50)])
    assert np.abs(model.logits(extremes.astype(np.int64))).max() <= bound


def test_example_script_runs(tmp_path):
    out = subprocess.run(
        [sys.executable, str(EXAMPLE), "--limit", "24", "--hidden", "8", "--epochs", "60"],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    ).stdout
    assert "encrypted outputs equal the clear integer outputs for every image: True" in out
    clear = next(line for line in out.splitlines() if "accuracy, clear" in line).split()[-1]
    encrypted = next(line for line in out.splitlines() if "accuracy, encrypted" in line).split()[-1]
    assert clear == encrypted
    assert "ms per image" in out
