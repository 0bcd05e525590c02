"""The GPU machine's test runner (`.ci/gpu_tests.py`) finds every file with `-m cuda` tests."""
import pathlib

REPO = pathlib.Path(__file__).resolve().parent.parent
THIS = pathlib.Path(__file__).name


def test_gpu_runner_finds_every_cuda_test_file():
    """`.ci/gpu_tests.py` (the GPU machine's run) takes tests/test_cuda_*.py and its EXTRA list: a file with
    `-m cuda` tests under another name must be in EXTRA, or its GPU tests would never run."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("gpu_tests", REPO / ".ci" / "gpu_tests.py")
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)
    tests = REPO / "tests"
    marked = {f"tests/{p.name}" for p in tests.glob("test_*.py")
              if "mark.cuda" in p.read_text() and not p.name.startswith("test_cuda_") and p.name != THIS}
    assert marked, "no file outside test_cuda_* has -m cuda tests: the check below would test nothing"
    assert marked <= set(runner.EXTRA), f"-m cuda tests the GPU runner skips: {sorted(marked - set(runner.EXTRA))}"
