"""ember.datasets: the reversal task, tokenizers, TextDataset, CIFAR-10 / ImageFolder readers on
generated files, and transforms (deterministic parts against torch)."""
import os
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import assert_same, from_torch

import ember
from ember.datasets import (
    CIFAR10, BPETokenizer, CharTokenizer, ImageFolder, ReversalDataset, TextDataset, data_path, sequence_accuracy,
)
from ember.datasets import transforms as T
from ember.utils.data import DataLoader

from PIL import Image  # noqa: E402  (an optional dependency, installed in the dev environment)


# ---- ReversalDataset --------------------------------------------------------------------------

def check_reversal_sample(ds, x, y):
    x, y = x.tolist(), y.tolist()
    full = x + [ds.PAD if y[-1] == -100 else y[-1]]
    assert len(x) == len(y) == 2 * ds.max_len + 2
    assert full[0] == ds.BOS
    sep = full.index(ds.SEP)
    L = sep - 1
    assert ds.min_len <= L <= ds.max_len
    a = full[1:sep]
    assert all(ds.NUM_SPECIAL <= t < ds.vocab_size for t in a)
    assert full[sep + 1:sep + 1 + L] == a[::-1]
    assert full[2 * L + 2] == ds.EOS and all(t == ds.PAD for t in full[2 * L + 3:])
    assert y == [t if L + 1 <= j <= 2 * L + 1 else -100 for j, t in enumerate(full[1:])]
    assert x == full[:-1]


def test_reversal_format():
    ds = ReversalDataset(50, num_symbols=6, min_len=2, max_len=5, seed=3)
    assert len(ds) == 50 and ds.vocab_size == 10 and ds.seq_len == 12
    lengths = set()
    for i in range(50):
        x, y = ds[i]
        assert x.dtype is ember.int64 and y.dtype is ember.int64
        check_reversal_sample(ds, x, y)
        lengths.add(x.tolist().index(ds.SEP) - 1)
    assert lengths == {2, 3, 4, 5}
    assert ds.decode(ds[0][0]).startswith("<BOS>")


def test_reversal_deterministic_and_batched():
    a = ReversalDataset(100, num_symbols=8, max_len=6, seed=1)
    b = ReversalDataset(100, num_symbols=8, max_len=6, seed=1)
    c = ReversalDataset(100, num_symbols=8, max_len=6, seed=2)
    idx = [5, 0, 99, -1]
    xa, ya = a.batch(idx)
    xb, yb = b[idx]
    assert xa.tolist() == xb.tolist() and ya.tolist() == yb.tolist()
    assert xa.tolist() != c.batch(idx)[0].tolist()
    assert xa[0].tolist() == a[5][0].tolist() and xa[3].tolist() == a[99][0].tolist()
    with pytest.raises(IndexError):
        a[100]
    batches = list(a.loader(32, shuffle=True, generator=ember.Generator().manual_seed(0)))
    assert [tuple(x.shape) for x, _ in batches] == [(32, 14)] * 3 + [(4, 14)]
    for x, y in batches[:1]:
        for i in range(4):
            check_reversal_sample(a, x[i], y[i])


def test_reversal_splits_are_disjoint():
    kw = dict(num_symbols=3, min_len=1, max_len=4)
    train = ReversalDataset(3000, split="train", seed=0, **kw)
    val = ReversalDataset(500, split="val", seed=0, **kw)
    ts = {tuple(r) for r in train.sequences(range(3000))[0]}
    vs = {tuple(r) for r in val.sequences(range(500))[0]}
    assert ts and vs and not ts & vs
    x, y = val[0]
    check_reversal_sample(val, x, y)


def test_sequence_accuracy():
    ds = ReversalDataset(8, num_symbols=5, max_len=4)
    x, y = ds.batch(range(8))
    pred = y.numpy().copy()
    pred[pred == -100] = 0  # unscored positions may hold anything
    assert sequence_accuracy(ember.from_numpy(pred), y) == 1.0
    row = 3
    col = int(np.nonzero(y.numpy()[row] != -100)[0][0])
    pred[row, col] = 1
    assert sequence_accuracy(pred, y.numpy()) == 7 / 8
    logits = np.eye(ds.vocab_size, dtype=np.float32)[np.where(pred < 0, 0, pred)]
    assert ds.accuracy(ember.from_numpy(logits), y) == 7 / 8


# ---- tokenizers and TextDataset ----------------------------------------------------------------------

TEXT = "hello world, the quick brown fox jumps over the lazy dog.\nÉté: naïve café — 東京!\n"


def test_char_tokenizer(tmp_path):
    tok = CharTokenizer(TEXT)
    assert tok.chars == sorted(set(TEXT)) and tok.vocab_size == len(set(TEXT))
    ids = tok.encode(TEXT)
    assert ids == [tok.stoi[c] for c in TEXT] and tok.decode(ids) == TEXT
    assert tok.decode(ember.tensor(ids)) == TEXT
    assert tok.encode_array("fox").tolist() == tok.encode("fox")
    with pytest.raises(ValueError, match="'Z' is not in the vocabulary"):
        tok.encode("aZ")
    tok.save(tmp_path / "chars.json")
    again = CharTokenizer.load(tmp_path / "chars.json")
    assert again.chars == tok.chars and again.encode(TEXT) == ids


def test_bpe_tokenizer_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    words = ["ember", "tensor", "gradient", "kernel", "batch", "loader", "café", "東京"]
    text = "\n".join(" ".join(rng.choice(words, 12)) for _ in range(200))
    path = tmp_path / "corpus.txt"
    path.write_text(text, encoding="utf-8")
    tok = BPETokenizer.train(str(path), vocab_size=300, special_tokens=["<|endoftext|>"])
    assert 257 < tok.vocab_size <= 300
    sample = "gradient kernel café 東京 unseen-word Z!"
    ids = tok.encode(sample)
    assert tok.decode(ids) == sample
    assert len(tok.encode("gradient kernel")) < len("gradient kernel".encode())  # merges were learnt
    assert tok.token_to_id("<|endoftext|>") is not None
    tok.save(tmp_path / "bpe.json")
    again = BPETokenizer.load(tmp_path / "bpe.json")
    assert again.encode(sample) == ids and again.decode(ember.tensor(ids)) == sample
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        BPETokenizer.train(str(tmp_path / "missing.txt"), vocab_size=300)


def test_optional_dependencies_missing(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tokenizers", None)  # makes `import tokenizers` raise ImportError
    with pytest.raises(ImportError, match="pip install tokenizers"):
        BPETokenizer.train_from_iterator(["abc"], vocab_size=300)
    (tmp_path / "a").mkdir()
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(ImportError, match="pip install pillow"):
        ImageFolder(tmp_path)


def test_text_dataset():
    tokens = np.arange(23)
    ds = TextDataset(tokens, block_size=5)
    assert len(ds) == 4  # (23 - 1) // 5
    x, y = ds[1]
    assert x.tolist() == [5, 6, 7, 8, 9] and y.tolist() == [6, 7, 8, 9, 10] and x.dtype is ember.int64
    xb, yb = ds[[3, 0]]
    assert xb.tolist() == [[15, 16, 17, 18, 19], [0, 1, 2, 3, 4]] and yb[0].tolist() == [16, 17, 18, 19, 20]
    with pytest.raises(IndexError):
        ds[4]
    overlapping = TextDataset(ember.arange(10), block_size=4, stride=2)
    assert len(overlapping) == 3 and overlapping[2][1].tolist() == [5, 6, 7, 8]
    train, val = TextDataset.splits(tokens, block_size=3, val_fraction=0.25)
    assert train.data.tolist() == list(range(17)) and val.data.tolist() == list(range(17, 23))
    r1 = ds.random_batch(6, generator=ember.Generator().manual_seed(0))
    r2 = ds.random_batch(6, generator=ember.Generator().manual_seed(0))
    assert r1[0].tolist() == r2[0].tolist() and tuple(r1[0].shape) == (6, 5)
    assert (r1[1] - r1[0]).tolist() == [[1] * 5] * 6
    batches = list(DataLoader(ds, batch_size=3))
    assert batches[0][0].tolist() == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11, 12, 13, 14]]


# ---- CIFAR-10 and ImageFolder ----------------------------------------------------------------------

def write_cifar(root, n_per_file=3):
    folder = root / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    expected = {}
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        labels = rng.integers(0, 10, n_per_file, dtype=np.uint8)
        pixels = rng.integers(0, 256, (n_per_file, 3, 32, 32), dtype=np.uint8)
        rec = np.concatenate([labels[:, None], pixels.reshape(n_per_file, -1)], axis=1)
        rec.tofile(folder / name)
        expected[name] = (labels, pixels)
    return expected


def test_cifar10_binary(tmp_path, monkeypatch):
    expected = write_cifar(tmp_path)
    train = CIFAR10(tmp_path, train=True)
    assert len(train) == 15 and train.data.shape == (15, 32, 32, 3) and train.data.dtype == np.uint8
    labels, pixels = expected["data_batch_2.bin"]
    img, target = train[4]  # the second record of data_batch_2
    assert target == labels[1] and np.array_equal(img, pixels[1].transpose(1, 2, 0))
    assert train.classes[0] == "airplane" and train.class_to_idx["truck"] == 9
    monkeypatch.setenv("EMBER_DATA", str(tmp_path))
    test = CIFAR10(train=False, transform=T.ToTensor(), target_transform=lambda t: t + 100)
    x, t = test[2]
    tl, tp = expected["test_batch.bin"]
    assert t == tl[2] + 100
    assert_same(x, torch.from_numpy(tp[2]).float().div(255), rtol=0, atol=0)
    xb, yb = next(iter(DataLoader(test, batch_size=3)))
    assert tuple(xb.shape) == (3, 3, 32, 32) and yb.tolist() == (tl + 100).tolist()


def test_cifar10_missing_files(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match=r"data_batch_1\.bin"):
        CIFAR10(tmp_path)
    monkeypatch.delenv("EMBER_DATA", raising=False)
    with pytest.raises(FileNotFoundError, match="EMBER_DATA"):
        CIFAR10()
    with pytest.raises(FileNotFoundError, match="nothing.txt"):
        data_path("nothing.txt", root=tmp_path)
    (tmp_path / "cifar-10-batches-bin").mkdir()
    (tmp_path / "cifar-10-batches-bin" / "test_batch.bin").write_bytes(b"\x00" * 100)
    with pytest.raises(ValueError, match="3073-byte"):
        CIFAR10(tmp_path, train=False)


def write_folder(root):
    rng = np.random.default_rng(1)
    arrays = {}
    for cls, names in {"dog": ["b.png", "a.PNG"], "cat": ["z.png", "sub/y.png"], "bird": ["x.bmp"]}.items():
        for name in names:
            path = root / cls / name
            path.parent.mkdir(parents=True, exist_ok=True)
            arr = rng.integers(0, 256, (4, 5, 3), dtype=np.uint8)
            Image.fromarray(arr).save(path)
            arrays[str(path)] = arr
    (root / "cat" / "notes.txt").write_text("not an image")
    return arrays


def test_image_folder(tmp_path):
    arrays = write_folder(tmp_path)
    ds = ImageFolder(tmp_path, transform=T.ToTensor())
    assert ds.classes == ["bird", "cat", "dog"] and ds.class_to_idx == {"bird": 0, "cat": 1, "dog": 2}
    rel = [(os.path.relpath(p, tmp_path), t) for p, t in ds.samples]
    assert rel == [("bird/x.bmp", 0), ("cat/z.png", 1), ("cat/sub/y.png", 1), ("dog/a.PNG", 2), ("dog/b.png", 2)]
    assert ds.targets == [0, 1, 1, 2, 2] and len(ds) == 5
    x, t = ds[3]
    assert t == 2 and tuple(x.shape) == (3, 4, 5)
    expected = torch.from_numpy(arrays[ds.samples[3][0]]).permute(2, 0, 1).float().div(255)
    assert_same(x, expected, rtol=0, atol=0)
    raw, _ = ImageFolder(tmp_path)[0]
    assert raw.mode == "RGB" and raw.size == (5, 4)
    paths = ImageFolder(tmp_path, loader=os.path.basename, target_transform=lambda t: -t)
    assert paths[3] == ("a.PNG", -2)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no valid file for the classes empty"):
        ImageFolder(tmp_path)
    assert len(ImageFolder(tmp_path, allow_empty=True)) == 5
    with pytest.raises(FileNotFoundError, match="class folder"):
        ImageFolder(tmp_path / "bird")


# ---- transforms ------------------------------------------------------------------------------------

def test_to_tensor_and_normalize():
    rng = np.random.default_rng(0)
    hwc = rng.integers(0, 256, (6, 7, 3), dtype=np.uint8)
    x = T.ToTensor()(hwc)
    ref = torch.from_numpy(hwc).permute(2, 0, 1).contiguous().to(torch.float32).div(255)
    assert_same(x, ref, rtol=0, atol=0)
    assert_same(T.to_tensor(Image.fromarray(hwc)), ref, rtol=0, atol=0)
    gray = rng.integers(0, 256, (6, 7), dtype=np.uint8)
    assert_same(T.to_tensor(gray), torch.from_numpy(gray)[None].float().div(255), rtol=0, atol=0)
    f = rng.standard_normal((4, 5, 2)).astype(np.float64)
    assert_same(T.to_tensor(f), torch.from_numpy(f).permute(2, 0, 1), rtol=0, atol=0)  # no scaling
    with pytest.raises(TypeError, match="PIL Image or ndarray"):
        T.to_tensor(ember.zeros(3, 4, 4))
    mean, std = [0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616]
    out = T.Normalize(mean, std)(x)
    tref = (ref - torch.tensor(mean).view(-1, 1, 1)) / torch.tensor(std).view(-1, 1, 1)
    assert_same(out, tref, rtol=0, atol=0)
    batch = ember.stack([x, x * 0.5])
    assert_same(T.normalize(batch, mean, std), (torch.stack([ref, ref * 0.5]) - torch.tensor(mean).view(-1, 1, 1))
                / torch.tensor(std).view(-1, 1, 1), rtol=0, atol=0)
    y = x.clone()
    assert T.Normalize(mean, std, inplace=True)(y) is y
    assert_same(y, tref, rtol=0, atol=0)
    with pytest.raises(TypeError, match="float tensor"):
        T.Normalize(mean, std)(ember.zeros(3, 2, 2, dtype=ember.uint8))
    with pytest.raises(ValueError, match="std evaluated to zero"):
        T.Normalize([0.0], [0.0])(x)


@pytest.mark.parametrize("padding", [2, (1, 3), (1, 2, 3, 0)])
@pytest.mark.parametrize("mode", ["constant", "edge", "reflect", "symmetric"])
def test_pad_matches_torch(padding, mode):
    t = torch.randn(2, 3, 5, 6)
    left, top, right, bottom = T._parse_padding(padding)
    p = (left, right, top, bottom)  # F.pad's order for the last two dims
    if mode == "symmetric":  # torch has no symmetric mode: NumPy's definition, as torchvision uses
        ref = torch.from_numpy(np.pad(t.numpy(), ((0, 0), (0, 0), (top, bottom), (left, right)), mode="symmetric"))
    else:
        tmode = {"edge": "replicate"}.get(mode, mode)
        ref = F.pad(t, p, mode=tmode, value=0.5) if mode == "constant" else F.pad(t, p, mode=tmode)
    out = T.pad(from_torch(t), padding, fill=0.5, padding_mode=mode)
    assert_same(out, ref, rtol=0, atol=0)


def test_crop_and_flip():
    t = torch.randn(3, 6, 7)
    x = from_torch(t)
    assert_same(T.crop(x, 1, 2, 3, 4), t[:, 1:4, 2:6], rtol=0, atol=0)
    assert_same(T.crop(x, -1, 5, 3, 4), F.pad(t, (0, 2, 1, 0))[:, 0:3, 5:9], rtol=0, atol=0)
    assert_same(T.hflip(x), t.flip(-1), rtol=0, atol=0)
    assert T.RandomHorizontalFlip(p=0.0)(x) is x
    assert_same(T.RandomHorizontalFlip(p=1.0)(x), t.flip(-1), rtol=0, atol=0)


def test_random_crop_reproducible_and_equal_to_pad_then_crop():
    t = torch.randn(3, 8, 8)
    x = from_torch(t)
    rc = T.RandomCrop(8, padding=4)
    ember.manual_seed(0)
    outs = [rc(x) for _ in range(6)]
    ember.manual_seed(0)
    again = [rc(x) for _ in range(6)]
    ember.manual_seed(0)
    padded = F.pad(t, (4, 4, 4, 4))
    offsets = set()
    for out, out2 in zip(outs, again):
        i, j, h, w = T.RandomCrop.get_params(T.pad(x, 4), (8, 8))
        offsets.add((i, j))
        assert 0 <= i <= 8 and 0 <= j <= 8 and (h, w) == (8, 8)
        assert_same(out, padded[:, i:i + 8, j:j + 8], rtol=0, atol=0)
        assert out.tolist() == out2.tolist()
    assert len(offsets) > 1
    g = ember.Generator().manual_seed(5)
    a = T.RandomCrop((5, 6), generator=g)(x)
    b = T.RandomCrop((5, 6), generator=ember.Generator().manual_seed(5))(x)
    assert tuple(a.shape) == (3, 5, 6) and a.tolist() == b.tolist()
    state = ember.get_rng_state()
    assert T.RandomCrop(8)(x) is not None and ember.get_rng_state().tolist() == state.tolist()  # full crop: no draw
    with pytest.raises(ValueError, match="larger than input image size"):
        T.RandomCrop(9)(x)
    assert tuple(T.RandomCrop(10, pad_if_needed=True)(x).shape) == (3, 10, 10)


def test_pil_transforms_agree_with_tensor_ones():
    arr = np.random.default_rng(2).integers(0, 256, (6, 7, 3), dtype=np.uint8)
    pil = Image.fromarray(arr)
    x = T.to_tensor(arr)
    for mode in ["constant", "edge", "reflect", "symmetric"]:
        assert_same(T.to_tensor(T.pad(pil, (1, 2), padding_mode=mode)),
                    torch.from_numpy(T.pad(x, (1, 2), padding_mode=mode).numpy()), rtol=0, atol=0)
    assert_same(T.to_tensor(T.crop(pil, 1, 2, 3, 4)), torch.from_numpy(T.crop(x, 1, 2, 3, 4).numpy()), rtol=0, atol=0)
    assert_same(T.to_tensor(T.hflip(pil)), torch.from_numpy(T.hflip(x).numpy()), rtol=0, atol=0)
    pipeline = T.Compose([T.RandomCrop(6, padding=2), T.RandomHorizontalFlip()])
    for seed in range(4):
        ember.manual_seed(seed)
        a = T.to_tensor(pipeline(pil))
        ember.manual_seed(seed)
        b = pipeline(x)
        assert a.tolist() == b.tolist()
