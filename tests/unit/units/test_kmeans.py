import joblib
import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans, MiniBatchKMeans

from speechkit.train.checkpoint import CheckpointError
from speechkit.units import KMeansQuantizer
from speechkit.utils.safe_pickle import UnsafePickleError


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    centers = rng.randn(12, 16) * 3
    x = (centers[rng.randint(0, 12, 3000)] + rng.randn(3000, 16)).astype(np.float32)
    return x


@pytest.mark.parametrize("cls", [MiniBatchKMeans, KMeans])
def test_km_bin_from_scikit_learn_gives_sklearn_predict(tmp_path, data, cls):
    """textlesslib's quantizer is `joblib.load(km.bin).predict(features)`: ours must give the same units."""
    km = cls(n_clusters=12, random_state=0, n_init=3).fit(data)
    joblib.dump(km, tmp_path / "km.bin")  # exactly how fairseq's learn_kmeans.py writes km.bin
    q = KMeansQuantizer.from_pretrained(tmp_path / "km.bin")
    test = data[:1000] + np.random.RandomState(1).randn(1000, 16).astype(np.float32) * 0.5
    assert q.vocab_size == 12 and q.dim == 16
    np.testing.assert_array_equal(q(torch.from_numpy(test)).numpy(), km.predict(test))
    assert q(torch.from_numpy(test).view(10, 100, 16)).shape == (10, 100)


def test_npy_and_our_format_roundtrip(tmp_path, data):
    c = data[:7]
    np.save(tmp_path / "c.npy", c)
    q = KMeansQuantizer.from_pretrained(tmp_path / "c.npy")
    np.testing.assert_array_equal(q(torch.from_numpy(c)).numpy(), np.arange(7))
    q.save(tmp_path / "km.safetensors", layer=6, source="test")
    q2 = KMeansQuantizer.from_pretrained(tmp_path / "km.safetensors")
    assert torch.equal(q2.centroids, q.centroids)


def test_fit_backends_recover_clusters(data):
    for backend in ("faiss", "sklearn"):
        q = KMeansQuantizer.fit(data, 12, seed=0, backend=backend, max_iter=50)
        units = q(torch.from_numpy(data)).numpy()
        assert len(np.unique(units)) >= 11  # well-separated blobs: (almost) every cluster used
        again = KMeansQuantizer.fit(data, 12, seed=0, backend=backend, max_iter=50)
        assert torch.allclose(q.centroids, again.centroids)  # seeded


class Evil:
    def __reduce__(self):
        return (eval, ("print('pwned')",))


def test_restricted_unpickling_of_km_bin(tmp_path, capsys):
    joblib.dump({"model": Evil()}, tmp_path / "evil.bin")
    with pytest.raises(UnsafePickleError, match=r"evil\.bin: refusing to unpickle builtins\.eval"):
        KMeansQuantizer.from_pretrained(tmp_path / "evil.bin")
    assert "pwned" not in capsys.readouterr().out
    joblib.dump(np.zeros(3), tmp_path / "array.bin")
    with pytest.raises(CheckpointError, match="not a fitted scikit-learn k-means model"):
        KMeansQuantizer.from_pretrained(tmp_path / "array.bin")
    (tmp_path / "junk.bin").write_bytes(b"\x00\x01junk")
    with pytest.raises(UnsafePickleError, match=r"junk\.bin: not a readable joblib pickle"):
        KMeansQuantizer.from_pretrained(tmp_path / "junk.bin")
    with pytest.raises(CheckpointError, match="no such k-means file"):
        KMeansQuantizer.from_pretrained(tmp_path / "none.bin")


def test_dimension_mismatch_is_reported(data):
    q = KMeansQuantizer(data[:4])
    with pytest.raises(ValueError, match="features must have dim 16"):
        q(torch.zeros(3, 8))


def test_frame_sampling_counts_frames_at_the_readers_rate(tmp_path):
    # 48 kHz files: their sample counts are 3x the 16 kHz samples the 320-sample hop applies to. With max_frames
    # above the corpus' frame count, every frame is used (an estimate in file samples kept only about a third)
    from speechkit.audio import io
    from speechkit.units.features import sample_frames
    from speechkit.units.mfcc import MfccFeatureReader

    g = np.random.default_rng(0)
    for i in range(3):
        io.save(tmp_path / f"u{i}.wav", (0.1 * g.standard_normal(48000 * 2)).astype(np.float32), 48000)
    reader = MfccFeatureReader()
    total = 3 * reader(torch.zeros(32000)).shape[0]
    frames = sample_frames(reader, tmp_path, max_frames=int(total * 1.05), progress=False)
    assert len(frames) == total
