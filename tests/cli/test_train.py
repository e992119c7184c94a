"""`chainrule train`: every file of the run directory, every model and kind of dataset, exact
resumption after SIGKILL and after Ctrl-C mid-epoch, and one-line errors for bad arguments."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import chainrule
from chainrule.cli import main

pytest.importorskip("sklearn")

TINY = ["--epochs", "2", "--hidden", "16", "--no-progress"]
PNG = b"\x89PNG\r\n\x1a\n"


def train(out: Path, *options: str) -> int:
    return main(["train", *options, "--out", str(out)])


def test_defaults_write_every_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert train(tmp_path / "run", *TINY) == 0
    run = tmp_path / "run"
    names = {p.name for p in run.iterdir()}
    assert names == {"config.json", "checkpoint.safetensors", "model.safetensors", "metrics.jsonl",
                     "curves.png", "grad_flow.png", "graph.html"}
    config = json.loads((run / "config.json").read_text())
    assert config["dataset"] == "digits" and config["model"] == "mlp" and config["epochs"] == 2
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    assert records[-1]["test_accuracy"] > 0.8 and records[-1]["train_loss"] < records[0]["train_loss"]
    for picture in ("curves.png", "grad_flow.png"):
        assert (run / picture).read_bytes().startswith(PNG)
    assert "<html" in (run / "graph.html").read_text().lower()
    checkpoint = chainrule.load(run / "checkpoint.safetensors")
    assert checkpoint["epoch"] == 2 and checkpoint["batch"] == 0
    assert set(checkpoint["optimizer"]) == {"state", "param_groups"}
    weights = chainrule.load(run / "model.safetensors")
    assert all(chainrule.equal(weights[k], v) for k, v in checkpoint["model"].items())
    out = capsys.readouterr().out
    for row in ("test accuracy", "time", "parameters", "gradient flow"):
        assert row in out
    assert "1,210" in out  # 64*16+16 + 16*10+10 parameters


@pytest.mark.parametrize("options", [
    ["--dataset", "iris", "--optimizer", "sgd", "--schedule", "onecycle", "--clip-grad", "1"],
    ["--dataset", "wine", "--model", "rnn", "--cell", "lstm", "--schedule", "step"],
    ["--dataset", "breast-cancer", "--optimizer", "adamw", "--weight-decay", "0.01",
     "--schedule", "exponential"],
    ["--model", "cnn", "--channels", "4", "--checkpoint-activations", "--epochs", "1",
     "--optimizer", "rmsprop", "--schedule", "none"],
    ["--model", "rnn", "--cell", "gru", "--epochs", "1", "--batch-size", "128"],
])
def test_models_datasets_and_options(tmp_path: Path, options: list[str]) -> None:
    assert train(tmp_path / "run", *TINY, *options) == 0
    records = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert 0 < json.loads(records[-1])["test_accuracy"] <= 1


def test_csv_with_string_labels(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 3))
    label = np.where(x[:, 0] + x[:, 1] > 0, "yes", "no")
    lines = ["a,b,label,c"] + [f"{r[0]},{r[1]},{t},{r[2]}" for r, t in zip(x, label)]
    (tmp_path / "data.csv").write_text("\n".join(lines) + "\n")
    assert train(tmp_path / "run", *TINY, "--dataset", str(tmp_path / "data.csv"),
                 "--target", "label", "--epochs", "10", "--lr", "0.03") == 0
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    assert record["test_accuracy"] >= 0.9  # a linear rule: the MLP finds it


def _idx(path: Path, array: np.ndarray, code: int) -> None:
    header = bytes([0, 0, code, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(gzip.compress(header + array.astype(">u1").tobytes()))


def test_idx_image_and_label_pair(tmp_path: Path) -> None:
    features, labels = chainrule.datasets.load_digits()
    images = (features.numpy()[:300].reshape(-1, 8, 8) * 15).astype(np.uint8)
    _idx(tmp_path / "images-idx3-ubyte.gz", images, 0x08)
    _idx(tmp_path / "labels-idx1-ubyte.gz", labels.numpy()[:300], 0x08)
    assert train(tmp_path / "run", *TINY, "--model", "cnn", "--channels", "4", "--dataset",
                 str(tmp_path / "images-idx3-ubyte.gz"), "--labels",
                 str(tmp_path / "labels-idx1-ubyte.gz")) == 0


# ------------------------------------------------------------------ resuming
RESUME = ["--dtype", "float64", "--epochs", "3", "--hidden", "16", "--seed", "3", "--no-progress",
          "--schedule", "onecycle"]
STOP_AT = 45 + 17  # the 18th batch of the second epoch (45 batches an epoch)

# runs `chainrule train` and, before step STOP_AT, says so and waits for the test to signal it
CHILD = textwrap.dedent("""
    import sys
    from chainrule.cli import main, trainer

    step, count = trainer.Trainer._step, [0]

    def announced_step(self, *args, **kwargs):
        if count[0] == int(sys.argv[1]):
            print("STEP", self.epoch, self.batch, flush=True)
            sys.stdin.readline()  # the test signals us while we wait here
        count[0] += 1
        return step(self, *args, **kwargs)

    trainer.Trainer._step = announced_step
    sys.exit(main(["train", *sys.argv[2:]]))
""")


def _stopped_run(out: Path, sig: int) -> subprocess.CompletedProcess:
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(STOP_AT), *RESUME, "--out", str(out)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        assert child.stdout.readline().split() == ["STEP", "1", str(STOP_AT - 45)]
        child.send_signal(sig)
        if sig != signal.SIGKILL:
            child.stdin.write("\n")  # let the step in progress finish
        stdout, stderr = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    return subprocess.CompletedProcess(child.args, child.returncode, stdout, stderr)


def _same_run(a: Path, b: Path) -> None:
    wa, wb = chainrule.load(a / "model.safetensors"), chainrule.load(b / "model.safetensors")
    assert wa.keys() == wb.keys()
    for key in wa:
        assert wa[key].dtype == chainrule.float64
        assert np.array_equal(wa[key].numpy(), wb[key].numpy()), key
    keep = ("epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "lr")
    ra, rb = ([{k: json.loads(line)[k] for k in keep} for line in (d / "metrics.jsonl").open()]
              for d in (a, b))
    assert ra == rb


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("uninterrupted") / "run"
    assert main(["train", *RESUME, "--out", str(out)]) == 0
    return out


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
def test_resume_after_sigkill_mid_epoch_equals_uninterrupted(tmp_path: Path, uninterrupted: Path) -> None:
    out = tmp_path / "run"
    killed = _stopped_run(out, signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    checkpoint = chainrule.load(out / "checkpoint.safetensors")
    assert (checkpoint["epoch"], checkpoint["batch"]) == (1, 0)  # the last epoch boundary
    assert not (out / "model.safetensors").exists()
    assert main(["train", "--resume", str(out), "--no-progress"]) == 0
    _same_run(out, uninterrupted)


@pytest.mark.skipif(os.name != "posix", reason="needs POSIX signals")
def test_ctrl_c_saves_mid_epoch_and_resume_equals_uninterrupted(tmp_path: Path,
                                                                 uninterrupted: Path) -> None:
    out = tmp_path / "run"
    stopped = _stopped_run(out, signal.SIGINT)
    assert stopped.returncode == 130, stopped.stderr
    assert stopped.stderr.strip().splitlines()[-1].startswith("interrupted: saved a checkpoint")
    assert "Traceback" not in stopped.stderr
    checkpoint = chainrule.load(out / "checkpoint.safetensors")
    # the batch in progress when Ctrl-C came was finished, then saved
    assert (checkpoint["epoch"], checkpoint["batch"]) == (1, STOP_AT - 45 + 1)
    assert main(["train", "--resume", str(out), "--no-progress"]) == 0
    _same_run(out, uninterrupted)


def test_resume_of_a_finished_run_changes_nothing(uninterrupted: Path, capsys: pytest.CaptureFixture) -> None:
    before = (uninterrupted / "checkpoint.safetensors").read_bytes()
    assert main(["train", "--resume", str(uninterrupted)]) == 0
    assert "nothing to resume" in capsys.readouterr().err
    assert (uninterrupted / "checkpoint.safetensors").read_bytes() == before


# ------------------------------------------------------------------ bad arguments
def _csv(tmp_path: Path) -> str:
    path = tmp_path / "no_target.csv"
    path.write_text("a,b,label\n1,2,x\n3,4,y\n")
    return str(path)


BAD = {
    "unknown dataset": (["--dataset", "mnist"], "unknown dataset 'mnist'"),
    "missing CSV": (["--dataset", "missing/data.csv"], "does not exist"),
    "missing IDX labels": (["--dataset", "{csv}x.idx", "--labels", "nope.idx"], "does not exist"),
    "CSV without target": (["--dataset", "{csv}"], "has no column 'target'"),
    "negative lr": (["--lr", "-0.1"], "--lr: must be greater than 0"),
    "lr not a number": (["--lr", "fast"], "--lr: expected a number"),
    "zero epochs": (["--epochs", "0"], "--epochs: must be at least 1"),
    "unknown model": (["--model", "transformer"], "--model: invalid choice"),
    "cnn on a table": (["--dataset", "iris", "--model", "cnn"], "needs image data"),
    "bad sizes": (["--hidden", "12,x"], "--hidden: expected sizes"),
    "resume nowhere": (["--resume", "no/such/run"], "no config.json there"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_arguments_give_one_line_and_exit_2(case: str, tmp_path: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    options, message = BAD[case]
    csv_path = _csv(tmp_path)
    options = [o.replace("{csv}x.idx", str(tmp_path / "x.idx")).replace("{csv}", csv_path)
               for o in options]
    (tmp_path / "x.idx").write_bytes(b"")
    if "--resume" not in options:
        options += ["--out", str(tmp_path / "run")]
    with pytest.raises(SystemExit) as exit_info:
        main(["train", *options])
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("chainrule"), captured.err
    assert message in lines[0]
    assert not (tmp_path / "run").exists()  # nothing is created for a refused command


def test_resume_refuses_other_options(uninterrupted: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--resume", str(uninterrupted), "--lr", "0.1", "--epochs", "9"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().endswith("drop --epochs, --lr")


def test_existing_run_directory_is_not_overwritten(uninterrupted: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--out", str(uninterrupted)])
    assert exit_info.value.code == 2
    assert "already holds a run" in capsys.readouterr().err


def test_the_installed_command_exits_2_without_a_traceback(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "chainrule", "train", "--dataset", "nope"],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == ("chainrule train: error: unknown dataset 'nope': choose one of digits, "
                             "iris, wine, breast-cancer, a .csv file, or an IDX image file with --labels\n")


def test_the_demo_defaults_reach_97_percent_on_digits(tmp_path: Path) -> None:
    # what `make demo` runs: `chainrule train` with no options (30 epochs, ~1-2 s)
    assert main(["train", "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    assert record["epoch"] == 30 and record["test_accuracy"] >= 0.97
