"""python -m ember.examples.gpt on a few KB of Tiny Shakespeare: end to end on the CPU, resume with the same
next losses, the tokenizers, clear errors, and the model's losses against a torch twin."""
import json
import os

import numpy as np
import pytest
import torch
import torch.nn as tnn
import torch.nn.functional as TF
from helpers import from_torch, made_up_play, to_torch

import ember
import ember.nn.functional as F
from ember.examples import gpt

TINY = ["--device", "cpu", "--batch-size", "4", "--block-size", "32", "--d-model", "32", "--heads", "2",
        "--layers", "2", "--vocab-size", "300", "--sample-len", "10", "--no-progress"]


@pytest.fixture(scope="module")
def text_dir(tmp_path_factory):
    """A 30 KB slice of tinyshakespeare.txt (from EMBER_DATA or ../shared/data), else a made-up play."""
    d = tmp_path_factory.mktemp("shakespeare")
    src = [os.path.join(p, "tinyshakespeare.txt") for p in (os.environ.get("EMBER_DATA", ""),
                                                           os.path.join(os.path.dirname(__file__), "..", "..",
                                                                        "shared", "data"))]
    src = [s for s in src if os.path.isfile(s)]
    if src:
        text = open(src[0], encoding="utf-8").read()[:30000]
    else:
        text = made_up_play()
    (d / "tinyshakespeare.txt").write_text(text, encoding="utf-8")
    return d


def test_runs_end_to_end_and_writes_its_outputs(text_dir, tmp_path, monkeypatch):
    seeds = []
    real = gpt.generate

    def counted(model, tok, prompt, n, device, temperature, top_k, seed):
        seeds.append(seed)
        return real(model, tok, prompt, n, device, temperature, top_k, seed)
    monkeypatch.setattr(gpt, "generate", counted)
    res = gpt.main(TINY + ["--data", str(text_dir), "--steps", "30", "--eval-every", "15", "--out", str(tmp_path)])
    for f in ("checkpoint.safetensors", "tokenizer.json", "history.json", "loss.png"):
        assert (tmp_path / f).exists(), f
    h = json.loads((tmp_path / "history.json").read_text())
    assert h["history"]["eval_step"] == [15, 30] and len(h["history"]["loss"]) == 30
    assert res["final_loss"] < res["losses"][0] and res["sample"].startswith("ROMEO:")
    # one sample an evaluation; the result's is the last evaluation's, not a second one after it
    assert seeds == [14, 29] and res["sample"] == h["history"]["samples"][-1]


def test_resume_continues_with_the_same_next_losses(text_dir, tmp_path, monkeypatch):
    full = gpt.main(TINY + ["--data", str(text_dir), "--steps", "30", "--eval-every", "10", "--out",
                            str(tmp_path / "full")])
    real = gpt.generate

    def dies_at_the_last_evaluation(model, tok, prompt, n, device, temperature, top_k, seed):
        if seed == 29:
            raise KeyboardInterrupt("interrupted")
        return real(model, tok, prompt, n, device, temperature, top_k, seed)
    monkeypatch.setattr(gpt, "generate", dies_at_the_last_evaluation)
    with pytest.raises(KeyboardInterrupt):
        gpt.main(TINY + ["--data", str(text_dir), "--steps", "30", "--eval-every", "10", "--out", str(tmp_path / "cut")])
    monkeypatch.setattr(gpt, "generate", real)
    assert ember.load(tmp_path / "cut" / "checkpoint.safetensors")["step"] == 20
    resumed = gpt.main(["--resume", str(tmp_path / "cut"), "--data", str(text_dir), "--no-progress"])
    assert resumed["steps"] == 30
    assert resumed["losses"][20:] == full["losses"][20:]          # bit for bit
    assert resumed["losses"][:20] == full["losses"][:20]          # the history came back with the checkpoint


def test_char_tokenizer_and_bpe_round_trip(text_dir, tmp_path):
    text = (text_dir / "tinyshakespeare.txt").read_text(encoding="utf-8")
    for kind in ("bpe", "char"):
        tok = gpt.make_tokenizer(kind, text, 300)
        assert tok.decode(tok.encode(text)) == text
    gpt.main(TINY + ["--data", str(text_dir), "--tokenizer", "char", "--steps", "5", "--out", str(tmp_path)])
    assert (tmp_path / "chars.json").exists() and isinstance(gpt.load_tokenizer(str(tmp_path)),
                                                             ember.datasets.text.CharTokenizer)


def test_missing_data_and_bad_options_say_what_to_do(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("EMBER_DATA", raising=False)
    with pytest.raises(SystemExit, match="Tiny Shakespeare not found: looked for .*nothere.*tinyshakespeare.txt"):
        gpt.main(TINY + ["--data", str(tmp_path / "nothere")])
    for flag, value in (("--heads", "3"), ("--batch-size", "0"), ("--steps", "-5"), ("--block-size", "1")):
        with pytest.raises(SystemExit) as e:
            gpt.main(TINY + [flag, value, "--data", str(tmp_path)])
        assert e.value.code == 2
        assert f"{flag} {value}: must be" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="no checkpoint.safetensors"):
        gpt.main(["--resume", str(tmp_path)])


class TorchGPT(tnn.Module):
    """gpt.GPT written with torch, the same parameter names."""

    def __init__(self, vocab, block, d, h, layers):
        super().__init__()
        self.tok, self.pos = tnn.Embedding(vocab, d), tnn.Embedding(block, d)
        self.drop = tnn.Dropout(0.0)
        self.blocks = tnn.ModuleList([TorchBlock(d, h) for _ in range(layers)])
        self.norm = tnn.LayerNorm(d)
        self.head = tnn.Linear(d, vocab, bias=False)
        self.head.weight = self.tok.weight

    def forward(self, ids):
        h = self.tok(ids) + self.pos(torch.arange(ids.shape[1]))
        for b in self.blocks:
            h = b(h)
        return self.head(self.norm(h))


class TorchBlock(tnn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.h = h
        self.ln1, self.ln2 = tnn.LayerNorm(d), tnn.LayerNorm(d)
        self.qkv, self.proj = tnn.Linear(d, 3 * d), tnn.Linear(d, d)
        self.mlp = tnn.Sequential(tnn.Linear(d, 4 * d), tnn.GELU(), tnn.Linear(4 * d, d), tnn.Dropout(0.0))

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.h, c // self.h).permute(2, 0, 3, 1, 4)
        a = TF.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(a.transpose(1, 2).reshape(b, t, c))
        return x + self.mlp(self.ln2(x))


def test_first_50_losses_match_a_torch_twin(text_dir):
    text = (text_dir / "tinyshakespeare.txt").read_text(encoding="utf-8")
    tok = gpt.make_tokenizer("char", text, 0)
    ids = tok.encode_array(text)
    torch.manual_seed(0)
    twin = TorchGPT(tok.vocab_size, 32, 32, 2, 2)
    model = gpt.GPT(tok.vocab_size, 32, 32, 2, 2)
    model.load_state_dict({k: from_torch(v) for k, v in twin.state_dict().items()})
    decay = lambda m: [q for q in m.parameters() if q.ndim >= 2]     # noqa: E731
    rest = lambda m: [q for q in m.parameters() if q.ndim < 2]       # noqa: E731
    opt = ember.optim.AdamW([{"params": decay(model), "weight_decay": 0.1}, {"params": rest(model),
                                                                            "weight_decay": 0.0}], lr=1e-3)
    topt = torch.optim.AdamW([{"params": decay(twin), "weight_decay": 0.1}, {"params": rest(twin),
                                                                            "weight_decay": 0.0}], lr=1e-3)
    losses, tlosses = [], []
    for step in range(50):
        x, y = gpt.batch(ids, 8, 32, 0, step)
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        opt.zero_grad()
        loss.backward()
        ember.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        tx, ty = to_torch(x), to_torch(y)
        tloss = TF.cross_entropy(twin(tx).flatten(0, 1), ty.flatten())
        topt.zero_grad()
        tloss.backward()
        tnn.utils.clip_grad_norm_(twin.parameters(), 1.0)
        topt.step()
        losses.append(loss.item())
        tlosses.append(tloss.item())
    np.testing.assert_allclose(losses, tlosses, rtol=1e-4)
    assert losses[-1] < losses[0]


def test_cuda_graph_is_refused_off_cuda_and_with_fp16(tmp_path, capsys):
    for extra, says in ((["--device", "cpu", "--cuda-graph"], "--cuda-graph: needs a CUDA device, and the run's "
                                                                "device is cpu"),
                        (["--cuda-graph", "--amp", "fp16"], "--cuda-graph: ")):
        with pytest.raises(SystemExit) as e:
            gpt.main(TINY + extra + ["--data", str(tmp_path)])
        assert e.value.code == 2 and says in capsys.readouterr().err
