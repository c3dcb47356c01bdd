import pytest

from speechkit.utils.files import atomic_open, atomic_path


def test_atomic_open_replaces_only_on_success(tmp_path):
    target = tmp_path / "m.tsv"
    target.write_text("old\n")
    with pytest.raises(RuntimeError):
        with atomic_open(target) as f:
            f.write("half written")
            raise RuntimeError("crash in the middle")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.tsv"]
    with atomic_open(target) as f:
        f.write("new\n")
    assert target.read_text() == "new\n"


def test_atomic_path_keeps_suffix_and_creates_parent(tmp_path):
    with atomic_path(tmp_path / "sub" / "x.flac") as tmp:
        assert tmp.suffix == ".flac" and tmp.parent == tmp_path / "sub"
        tmp.write_bytes(b"data")
    assert (tmp_path / "sub" / "x.flac").read_bytes() == b"data"


def test_atomic_outputs_get_the_permissions_of_a_plain_open(tmp_path):
    import os
    import stat

    umask = os.umask(0o022)
    try:
        with atomic_open(tmp_path / "a.txt") as f:
            f.write("x")
        (tmp_path / "b.txt").write_text("x")
    finally:
        os.umask(umask)
    mode = stat.S_IMODE((tmp_path / "a.txt").stat().st_mode)
    assert mode == stat.S_IMODE((tmp_path / "b.txt").stat().st_mode) == 0o644
