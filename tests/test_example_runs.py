"""benchmarks/example_runs.py on the CPU with tiny settings: both examples through their `main`, both twins, on
the real data where it is found (a few hundred CIFAR-10 images, Tiny Shakespeare with the character tokenizer),
else made-up data of the same shapes (CI). Every figure of the
report comes from a run that happened; the GPT twin, from ember's initial weights on the same batches, follows
ember's losses; a budget cuts a run short and the report says so."""
import io
import math
import os
import tarfile

import pytest

from helpers import load_benchmark, made_up_cifar, made_up_play

VIT_TINY = "--d-model 32 --heads 2 --layers 1 --batch-size 32"
GPT_TINY = "--tokenizer char --d-model 32 --heads 2 --layers 1 --block-size 32 --batch-size 8 --sample-len 60"


def _data_file(name):
    """`name` in $EMBER_DATA or ../shared/data beside the checkout (the example tests' places); None if absent."""
    bases = [os.environ.get("EMBER_DATA", ""), os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")]
    found = [os.path.join(b, name) for b in bases if b and os.path.exists(os.path.join(b, name))]
    return found[0] if found else None


@pytest.fixture(scope="module")
def er():
    return load_benchmark("example_runs")


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    """tinyshakespeare.txt where it is found, else a made-up play (CI has no data folder)."""
    path = _data_file("tinyshakespeare.txt")
    if path is None:
        path = tmp_path_factory.mktemp("text") / "tinyshakespeare.txt"
        path.write_text(made_up_play(), encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def mini_cifar(tmp_path_factory):
    """A cifar10-jpeg.tar.gz of the real archive's first 40 training and 20 test JPEGs of each class (copied as
    they are): decoding all 60,000 images would take ~10 s of the test's time, and evaluating on 10,000 more."""
    src = _data_file("cifar10-jpeg.tar.gz") or _data_file("cifar10-jpeg")
    path = tmp_path_factory.mktemp("cifar") / "cifar10-jpeg.tar.gz"
    if src is None:     # CI has no data folder: as many made-up images (a colour per class, plus noise)
        return made_up_cifar(path, 40, 20)
    from ember.examples import vit
    keep = {"train": 40, "test": 20}
    counts = {}
    with tarfile.open(path, "w:gz") as tar:
        for split, cls, raw in vit._members(src):
            n = counts.get((split, cls), 0)
            if n < keep[split]:
                counts[split, cls] = n + 1
                info = tarfile.TarInfo(f"cifar10-jpeg/{split}/{cls}/{n:04d}.jpg")
                info.size = len(raw)
                tar.addfile(info, io.BytesIO(raw))
    assert len(counts) == 20 and set(counts.values()) <= {20, 40}
    return path


@pytest.fixture(scope="module")
def tiny_run(er, mini_cifar, text_file, tmp_path_factory):
    """One tiny run of both examples and both frameworks: ViT 1 epoch on 256 of the 400 training images; GPT
    160 steps, evaluated at 80 and 160 (so that the window 100..150 holds no evaluation)."""
    out = tmp_path_factory.mktemp("runs")
    argv = ["--device", "cpu", "--vit-epochs", "1", "--vit-limit", "256", "--gpt-steps", "160",
            "--data", os.path.dirname(text_file), "--out", str(out), "--json", str(out / "records.json"),
            "--vit-args", f"{VIT_TINY} --data {mini_cifar} --cache {out / 'cache'}",
            "--gpt-args", f"{GPT_TINY} --eval-every 80"]
    return er.main(argv), out


def test_every_run_gives_finite_figures_and_a_table_row(er, tiny_run):
    res, out = tiny_run
    assert res["interrupted"] is None
    recs = res["records"]
    assert sorted(recs) == sorted((ex, fw) for ex in er.EXAMPLES for fw in er.FRAMEWORKS)
    for (ex, fw), r in recs.items():
        assert r["status"] == "ok", (ex, fw, r["status"])
        assert r["seconds"] > 0 and all(math.isfinite(v) for v in r["history"]["loss"]), (ex, fw)
        m = er.metric_at(r)
        if ex == "vit":
            assert list(m) == [1] and 0.0 <= m[1] <= 1.0, (fw, m)
            assert len(r["history"]["step"]) == 256 // 32               # --limit 256 of 400, batch 32, 1 epoch
        else:
            assert list(m) == [80, 160] and all(math.isfinite(v) for v in m.values()), (fw, m)
            assert r["sample"].startswith("ROMEO:")
    text = res["text"]
    for section in text.split("#### ")[1:]:                              # a row per framework in each table
        rows = [ln for ln in section.splitlines() if ln.startswith("| ") and " | cpu | " in ln]
        assert [r.split(" (")[0] for r in rows] == ["| ember", "| torch"], section
        for row in rows:
            cells = [c.strip() for c in row.strip("|").split("|")]
            assert all(c not in ("-", "") for c in cells), row               # every figure was measured
    assert "failed" not in text and "cut short" not in text
    assert (out / "records.json").stat().st_size > 0


def test_the_gpt_twin_follows_ember_from_the_same_weights(er, tiny_run):
    """Same initial weights, same batches, no dropout, float32: the first losses agree to float rounding and the
    validation losses after 160 steps well inside the issue's 0.02."""
    recs = tiny_run[0]["records"]
    e, t = recs["gpt", "ember"], recs["gpt", "torch"]
    assert e["history"]["loss"][0] == pytest.approx(t["history"]["loss"][0], rel=1e-5)
    for s in (80, 160):
        assert abs(er.metric_at(e)[s] - er.metric_at(t)[s]) < 0.005, s
    # the ViT's first batch differs only by the two generators' crops, flips and dropout masks
    ve, vt = recs["vit", "ember"]["history"]["loss"][0], recs["vit", "torch"]["history"]["loss"][0]
    assert abs(ve - vt) < 0.15, (ve, vt)


def test_ms_per_step_comes_from_the_log_lines_where_the_run_is_long_enough(er, tiny_run):
    res = tiny_run[0]
    recs = res["records"]
    gpt_ms = er.timing([recs["gpt", "ember"], recs["gpt", "torch"]])
    assert {how for _, how in gpt_ms.values()} == {"windows"} and all(v > 0 for v, _ in gpt_ms.values())
    assert set(recs["gpt", "ember"]["marks"]) == {0, 50, 100, 150}      # read back from the example's log lines
    vit_ms = er.timing([recs["vit", "ember"], recs["vit", "torch"]])     # 8 steps: wall time / steps
    assert {how for _, how in vit_ms.values()} == {"wall"}
    gpt_targets, vit_targets = res["targets"]["gpt"], res["targets"]["vit"]
    assert gpt_targets[0].split(": ")[1].startswith(("met", "missed"))
    assert gpt_targets[-1].split(": ")[1].startswith(("met", "missed"))
    assert vit_targets[0].split(": ")[1].startswith(("met", "missed"))
    assert "not measured (ran 1 of 30 epochs" in vit_targets[1]        # 1 epoch says nothing about 30


def test_windows_leave_out_the_first_steps_and_evaluations(er):
    text = "".join(f"step {s:6d}  loss 1.0000  {(s + 1) * 10 / (0.5 + s * 0.01 + (0.3 if s > 120 else 0)):,.0f} "
                   f"tok/s\n" for s in (0, 50, 100, 150, 200))
    marks = er.marks_from_log(text, 10)
    assert marks[0] == pytest.approx(0.5, rel=1e-3) and marks[200] == pytest.approx(2.8, rel=1e-3)
    # 10 ms a step, but an evaluation after step 120 took 0.3 s: the window 100..150 is left out
    assert er.ms_per_step(marks, [120]) == pytest.approx(10.0, rel=1e-2)
    assert er.ms_per_step(marks, [60, 120, 160]) is None


def test_a_budget_cuts_the_run_short_and_keeps_what_it_reached(er, text_file, tmp_path, monkeypatch):
    """The example's run stopped by --budget-s: its evaluations up to the last checkpoint are reported, marked as
    cut short; the twin, not started, says so."""
    import ember
    from ember.examples import gpt
    real = gpt.generate

    def slow(*a, **k):              # a slow evaluation: the budget runs out after the first checkpoints
        import time
        time.sleep(0.3)
        return real(*a, **k)
    monkeypatch.setattr(gpt, "generate", slow)
    res = er.main(["--device", "cpu", "--examples", "gpt", "--gpt-steps", "4000", "--budget-s", "2.5",
                   "--data", os.path.dirname(text_file), "--out", str(tmp_path),
                   "--gpt-args", f"{GPT_TINY} --eval-every 20"])
    assert "budget-s" in res["interrupted"]
    e, t = res["records"]["gpt", "ember"], res["records"].get(("gpt", "torch"))
    assert e["status"] == "cut" and t is None
    reached = e["history"]["eval_step"]
    assert reached and reached == list(range(20, 20 * len(reached) + 1, 20)), reached
    last = e["history"]["eval_loss"][-1]
    assert "(interrupted: incomplete)" in res["text"]
    assert f"| {len(e['history']['step'])} of 4000 (cut short, last val loss {last:.4f} @ {reached[-1]}) |" in \
        res["text"]
    assert "| torch (-) | cpu | not run |" in res["text"]
    assert ember.ones(2).sum().item() == 2.0                            # ember still works after the interrupt
