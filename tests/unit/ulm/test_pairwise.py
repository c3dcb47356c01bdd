import csv
import json

import pytest
import torch

from speechkit.cli.main import main
from speechkit.data.manifest import UnitRecord, write_units_jsonl
from speechkit.ulm import UnitLM, UnitLMError
from speechkit.ulm.pairwise import PairResult, evaluate_pairs, find_pairs, pair_accuracy, score_pairs
from tests.unit.ulm.conftest import save_tiny_lm


def touch(folder, *names):
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        (folder / n).write_bytes(b"")


def test_labelled_layout_pairs_by_id_whatever_the_order(tmp_path):
    touch(tmp_path, "1_incorrect.wav", "0_correct.wav", "10_correct.wav", "1_correct.wav", "0_incorrect.wav",
          "10_incorrect.wav")
    pairs = find_pairs(tmp_path)
    assert [p.id for p in pairs] == ["0", "1", "10"]
    assert all(p.positive.name.endswith("_correct.wav") and p.negative.name.endswith("_incorrect.wav")
               for p in pairs)


def test_positional_layout_is_slamkits_sorted_two_by_two(tmp_path):
    touch(tmp_path / "swuggy", "11_blick.wav", "0_brick.wav", "10_pencil.wav", "1_brack.wav", "2_dog.wav",
          "3_dag.wav")
    pairs = find_pairs(tmp_path / "swuggy")
    assert [(p.positive.name, p.negative.name) for p in pairs] == [
        ("0_brick.wav", "1_brack.wav"), ("2_dog.wav", "3_dag.wav"), ("10_pencil.wav", "11_blick.wav")]
    touch(tmp_path / "sblimp", "1+the_dogs_barks.wav", "0+the_dog_barks.wav")
    (pair,) = find_pairs(tmp_path / "sblimp", sep="+")
    assert pair.positive.name == "0+the_dog_barks.wav"


def test_pairs_stay_inside_their_sub_folder(tmp_path):
    touch(tmp_path / "a", "0_x.wav", "1_y.wav")
    touch(tmp_path / "b", "0_x.wav", "1_y.wav")
    pairs = find_pairs(tmp_path)
    assert [p.id for p in pairs] == ["a/0_x", "b/0_x"] and pairs[1].negative == tmp_path / "b" / "1_y.wav"


def test_bad_folders_get_clear_errors(tmp_path):
    touch(tmp_path / "odd", "0_a.wav", "1_b.wav", "2_c.wav")
    with pytest.raises(UnitLMError, match=r"odd: 3 audio files, an odd number.*2_c.wav, has no partner"):
        find_pairs(tmp_path / "odd")
    touch(tmp_path / "lonely", "0_correct.wav", "0_incorrect.wav", "1_correct.wav")
    with pytest.raises(UnitLMError, match=r"lonely: 1_correct.wav has no negative partner"):
        find_pairs(tmp_path / "lonely")
    touch(tmp_path / "twice", "0_correct.wav", "0_correct_v2.wav")
    with pytest.raises(UnitLMError, match=r"two positive files for id '0'"):
        find_pairs(tmp_path / "twice")
    touch(tmp_path / "names", "a_x.wav", "b_y.wav")
    with pytest.raises(UnitLMError, match=r"a_x.wav: positional layout needs names starting with an integer"):
        find_pairs(tmp_path / "names")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UnitLMError, match=r"empty: no audio files"):
        find_pairs(tmp_path / "empty")
    touch(tmp_path / "mixed", "0_correct.wav", "1_other.wav")
    with pytest.raises(UnitLMError, match=r"1_other.wav: labelled layout needs names like"):
        find_pairs(tmp_path / "mixed", layout="labelled")


def test_accuracy_counts_a_tie_as_half():
    assert pair_accuracy(torch.tensor([1.0, 2.0, 3.0, 5.0]), torch.tensor([0.0, 2.0, 4.0, 1.0])) == 0.625
    r = PairResult([], torch.tensor([-1.0, -2.0]), torch.tensor([-1.0, -3.0]))
    assert r.scores.tolist() == [0.5, 1.0] and r.summary()["ties"] == 1


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    d = tmp_path_factory.mktemp("pairwise_lm")
    save_tiny_lm(d / "text", "opt")
    lm = UnitLM.warm_start(d / "text", num_units=30)
    lm.save_pretrained(d / "ulm")
    return lm, d / "ulm"


def test_batched_pair_scores_equal_a_per_pair_loop(lm):
    lm, _ = lm
    g = torch.Generator().manual_seed(1)
    pos = [torch.randint(0, 30, (int(n),), generator=g).tolist() for n in torch.randint(2, 40, (9,), generator=g)]
    neg = [torch.randint(0, 30, (int(n),), generator=g).tolist() for n in torch.randint(2, 40, (9,), generator=g)]
    for reduction in ("mean", "sum"):
        a, b = score_pairs(lm, pos, neg, reduction=reduction, batch_size=4)
        loop = [(lm.log_likelihood([p], reduction)[0], lm.log_likelihood([n], reduction)[0])
                for p, n in zip(pos, neg, strict=True)]
        assert torch.allclose(a, torch.stack([x for x, _ in loop]), atol=1e-5)
        assert torch.allclose(b, torch.stack([y for _, y in loop]), atol=1e-5)


def test_evaluate_pairs_identical_sides_tie(lm, tmp_path):
    lm, _ = lm
    touch(tmp_path, "0_correct.wav", "0_incorrect.wav", "1_correct.wav", "1_incorrect.wav")
    units = {"0": [1, 2, 3], "1": [4, 5]}
    result = evaluate_pairs(lm, find_pairs(tmp_path), lambda f: units[f.stem.split("_")[0]])
    assert result.accuracy == 0.5 and result.summary() == {"accuracy": 0.5, "pairs": 2, "ties": 2}


def test_cli_eval_storycloze_with_units_writes_csv_and_results(lm, tmp_path, capsys):
    lm, ulm_dir = lm
    g = torch.Generator().manual_seed(2)
    for name in ("sSC", "tSC"):
        records = []
        for i in range(6):
            touch(tmp_path / name, f"{i}_correct.wav", f"{i}_incorrect.wav")
            for kind in ("correct", "incorrect"):
                records.append(UnitRecord(f"{i}_{kind}", "", torch.randint(0, 30, (12,), generator=g).tolist()))
        write_units_jsonl(tmp_path / f"{name}.jsonl", records)
    out = tmp_path / "out"
    code = main(["eval", "storycloze", str(tmp_path / "sSC"), str(tmp_path / "tSC"), "--ulm", str(ulm_dir),
                 "--units", str(tmp_path / "sSC.jsonl"), str(tmp_path / "tSC.jsonl"), "-o", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "storycloze sSC: accuracy" in printed and "storycloze tSC: accuracy" in printed
    results = json.loads((out / "results.json").read_text())
    rows = list(csv.DictReader(open(out / "sSC.csv")))
    assert len(rows) == 6 and rows[0]["positive"] == "0_correct.wav"
    assert results["results"]["sSC"]["accuracy"] == pytest.approx(sum(float(r["score"]) for r in rows) / 6)
    assert all(float(r["score"]) == float(float(r["positive_ll"]) > float(r["negative_ll"])) for r in rows)

    code = main(["eval", "storycloze", str(tmp_path / "sSC"), "--ulm", str(ulm_dir)])
    assert code == 1 and "give --encoder" in capsys.readouterr().err
    code = main(["eval", "storycloze", str(tmp_path / "sSC"), "--ulm", str(ulm_dir), "--units",
                 str(tmp_path / "tSC.jsonl"), str(tmp_path / "sSC.jsonl")])
    assert code == 1 and "one units jsonl per folder" in capsys.readouterr().err


def test_cli_eval_from_audio_with_an_encoder_matches_speechkit_encode_units(tmp_path, capsys):
    from speechkit.audio import io
    from tests.unit.test_pipeline import K, speech_like, tiny_encoder

    enc = tiny_encoder()
    enc.save_pretrained(tmp_path / "encoder")
    save_tiny_lm(tmp_path / "text", "llama")
    UnitLM.warm_start(tmp_path / "text", num_units=K).save_pretrained(tmp_path / "ulm")
    bench = tmp_path / "sblimp"
    for i in range(4):  # slamkit's positional layout with '+' (sBLIMP)
        io.save(bench / f"{i}+s{i}.wav", speech_like(1.0 + 0.2 * i, sr=22050), 22050)
    assert main(["encode", str(bench), "-o", str(tmp_path / "units.jsonl"), "--encoder", str(tmp_path / "encoder"),
                 "--batch-seconds", "0"]) == 0
    common = [str(bench), "--ulm", str(tmp_path / "ulm"), "--reduction", "sum"]
    assert main(["eval", "sblimp", *common, "--encoder", str(tmp_path / "encoder"), "-o", str(tmp_path / "a")]) == 0
    assert main(["eval", "sblimp", *common, "--units", str(tmp_path / "units.jsonl"), "-o", str(tmp_path / "b")]) == 0
    a = list(csv.DictReader(open(tmp_path / "a" / "sblimp.csv")))
    b = list(csv.DictReader(open(tmp_path / "b" / "sblimp.csv")))
    assert [r["positive"] for r in a] == ["0+s0.wav", "2+s2.wav"] and a == b
    capsys.readouterr()
    UnitLM.warm_start(tmp_path / "text", num_units=K + 1).save_pretrained(tmp_path / "ulm2")
    assert main(["eval", "sblimp", str(bench), "--ulm", str(tmp_path / "ulm2"), "--encoder",
                 str(tmp_path / "encoder")]) == 1
    assert f"makes {K} units but --ulm" in capsys.readouterr().err
