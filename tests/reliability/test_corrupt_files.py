"""Corrupted binaries for every loader: zero-length, truncated (anywhere, and inside the header), bit-flipped
(anywhere, and inside the header), random bytes, another format. Each loader must load the file or raise a
SpeechkitError naming it (``tests/reliability/faults.py``); the tally of each loader goes into the suite's report."""

from __future__ import annotations

import pytest

from tests.reliability.artifacts import BUILDERS
from tests.reliability.faults import CORRUPTIONS, Tally, check, corrupt_file, iterations, record

SEEDS = iterations(3)


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_corrupted_file_is_loaded_or_refused_by_name(tmp_path, kind):
    art = BUILDERS[kind](tmp_path)
    art.load(art.path)  # the pristine file loads
    tally = Tally()
    for target in art.targets:
        f = art.path / target if target else art.path
        for corruption in CORRUPTIONS:
            for seed in range(1 if corruption == "zero-length" else SEEDS):
                original = corrupt_file(f, corruption, seed)
                try:
                    check(lambda: art.load(art.path), [str(f), str(art.path)],  # noqa: B023
                          f"{target or f.name}, {corruption}, seed {seed}", tally)
                finally:
                    f.write_bytes(original)
    record("corrupted files", art.name, tally)
    assert not tally.failures, "\n".join(tally.failures[:20])
    assert tally.refused > 0, "no corruption was detected at all: the loader reads nothing?"


def test_regression_weight_norm_with_a_zero_size_dim_is_refused_not_a_segfault(tmp_path):
    """Found by this suite (bit flips, seed 6): a flipped shape gave ``weight_g`` a zero-size dim, and
    ``torch._weight_norm`` crashed the process with a segmentation fault."""
    import shutil

    import torch

    from speechkit.errors import SpeechkitError
    from speechkit.vocoders import CodeHiFiGANVocoder
    from tests.reliability.artifacts import VOCODER_DATA

    shutil.copytree(VOCODER_DATA / "expresso", tmp_path / "v")
    ckpt = tmp_path / "v" / "g_00000000"
    state = torch.load(ckpt, weights_only=True)
    key = next(k for k in state["generator"] if k.endswith(".weight_g"))
    g = state["generator"][key]
    state["generator"][key] = torch.zeros(g.shape[0], 1, 0)
    torch.save(state, ckpt)
    with pytest.raises(SpeechkitError, match=f"{ckpt}.*weight norm of"):
        CodeHiFiGANVocoder.from_pretrained(ckpt)
