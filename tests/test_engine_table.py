"""The README's engine table (benchmarks/engine_table.py) and what make reproduce publishes."""

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import engine_table  # noqa: E402
import reproduce  # noqa: E402

PERFORMANCE = """# Performance

<!-- bench:start -->
Machine: Some CPU, 4 cores; Python 3.11.7, NumPy 2.4.6

| engine | train ms/step | x floor | x PyTorch | eval ms/step | 13 epochs (est.) |
|---|---:|---:|---:|---:|---:|
| numpy | 45.0 | 1.45 | 0.72 | 16.3 | 23 min |
| tf-graph | 62.0 | 2.00 | 0.99 | 23.4 | 32 min |
| PyTorch 2.13.0+cpu nn.LSTM | 62.9 | 2.02 | 1.00 | 16.7 | 32 min |

| hidden | batch | steps | GFLOP/step | train ms/step | x floor | eval ms/step |
|---:|---:|---:|---:|---:|---:|---:|
| 650 | 20 | 20 | 31.8 | 210.4 | 1.35 | 69.8 |

(`make bench`, 2031-02-03, 114 s)
<!-- bench:end -->
"""


def published_run(folder: Path, valid: float, test: float, started: str) -> None:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"engine": "numpy", "dtype": "float32",
                                                    "config": {}, "started": started}))
    records = [{"event": "epoch", "epoch": 1, "step": 10, "valid_perplexity": valid + 5},
               {"event": "epoch", "epoch": 2, "step": 20, "valid_perplexity": valid},
               {"event": "test", "step": 20, "test_perplexity": test}]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def test_engine_table_takes_speed_from_the_bench_table_and_perplexity_from_the_runs(tmp_path):
    performance = tmp_path / "performance.md"
    performance.write_text(PERFORMANCE)
    results = tmp_path / "results"
    published_run(results / "numpy", 118.654, 114.666, "2031-02-01T03:25:20+0000")
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\nintro\n<!-- engines:start -->\nold\n<!-- engines:end -->\nrest\n")

    assert engine_table.update(readme, performance, results)

    text = readme.read_text()
    assert text.startswith("# x\n\nintro\n<!-- engines:start -->\n")
    assert text.endswith("<!-- engines:end -->\nrest\n") and "old" not in text
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[3:6]]
            for line in text.splitlines() if line.startswith("| `")}
    assert rows["`numpy` (default)"] == ["45.0", "23 min", "118.65 / 114.67"]
    assert rows["`tf-graph`"] == ["62.0", "32 min", "–"]  # benched, no published run
    assert rows["`tf-eager`"] == ["–", "–", "–"]  # in neither
    assert "Some CPU, 4 cores" in text and "2031-02-03" in text  # the bench's machine, date
    assert "runs started 2031-02-01" in text


def test_a_readme_without_markers_is_left_alone(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# no table here\n")
    assert not engine_table.update(readme, tmp_path / "missing.md", tmp_path / "none")
    assert readme.read_text() == "# no table here\n"


def test_published_config_shows_no_path_of_the_training_machine(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "cache" / "ptb-lstm" / "ptb").mkdir(parents=True)
    elsewhere = str(tmp_path / "somewhere" / "ptb")
    info = {"data_dir": elsewhere, "engine": "numpy",
            "command": f"ptb-lstm train --config small --data-dir {elsewhere} --out runs/x"}

    shown = reproduce.public_config(info)

    assert shown["data_dir"] == "$PTB_DATA_DIR"
    assert shown["command"] == "ptb-lstm train --config small --data-dir $PTB_DATA_DIR --out runs/x"
    assert str(tmp_path) not in json.dumps(shown)
    assert info["data_dir"] == elsewhere  # the run's own record is not changed
    cache = reproduce.public_config({"data_dir": str(tmp_path / "cache" / "ptb-lstm" / "ptb"),
                                     "command": "ptb-lstm train --config small"})
    assert cache["data_dir"] == "~/.cache/ptb-lstm/ptb"
    assert cache["command"] == "ptb-lstm train --config small"
