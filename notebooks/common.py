"""Cells shared by the three notebooks (see build.py)."""

from __future__ import annotations

import nbformat


def md(text: str):
    return nbformat.v4.new_markdown_cell(text)


def code(text: str, figure: str | None = None):
    """A code cell; ``figure`` names the docs/figures/ file its image is exported to."""
    cell = nbformat.v4.new_code_cell(text)
    if figure:
        cell.metadata["figure"] = figure
    return cell


SETUP = '''\
import os
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's C++ start-up log, if it loads
import inspect, json, pathlib, time
import numpy as np
import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from ptb_lstm.config import PRESETS
from ptb_lstm.data import load_corpus, locate_data_dir

STEPS = int(os.environ.get("PTB_LSTM_NOTEBOOK_STEPS", "{steps}"))  # steps of the short runs
REPO = pathlib.Path(os.environ.get("PTB_LSTM_REPO", ".."))  # the repository (docs/results)
corpus = load_corpus(locate_data_dir())  # $PTB_DATA_DIR, or the user cache (downloading once)
print(f"PTB: {{len(corpus.train):,}} training tokens, vocabulary {{corpus.vocab_size:,}}; "
      f"short runs of {{STEPS}} steps")

def show_source(obj):
    """Show the toolkit's own code (imported, not copied)."""
    display(Markdown("```python\\n" + inspect.getsource(obj) + "\\n```"))
'''

SHORT_RUN = '''\
import tempfile
from ptb_lstm.engines import create_engine
from ptb_lstm.params import init_params
from ptb_lstm.metrics import read_metrics
from ptb_lstm.train import train

config = PRESETS["small"]
engine = create_engine("{engine}", config, init_params(config, corpus.vocab_size))
out = tempfile.mkdtemp(prefix="ptb-lstm-notebook-")
started = time.perf_counter()
result = train(config, corpus, engine, out, max_steps=STEPS, log_every=10)
seconds = time.perf_counter() - started
records = [r for r in read_metrics(f"{{out}}/metrics.jsonl") if r["event"] == "step"]
print(f"{{STEPS}} steps of the small config with the {engine} engine, then a pass over the "
      f"valid split, in {{seconds:.0f}} s; valid perplexity {{result.valid.perplexity:.1f}}")
'''

CURVE = '''\
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot([r["step"] for r in records], [r["perplexity"] for r in records])
ax.set_xlabel("training step"); ax.set_ylabel("running training perplexity"); ax.set_yscale("log")
ax.set_title("{title}")
ax.grid(True, which="both", alpha=0.3)
plt.show()
print(f"ms per step: {{result.epochs[-1]['ms_per_step']:.1f}}")
'''


def agreement_cell(*engines: str) -> str:
    """Each of ``engines`` against the numpy engine (ptb_lstm.agreement.compare)."""
    return """\
from ptb_lstm.agreement import compare

rows = [row for dtype in ("float64", "float32")
        for row in compare(ENGINES, PRESETS["tiny"], corpus, dtype, steps=5)]
print(f"{'engine':<16} {'dtype':<8} {'losses':>9} {'params':>9} {'valid ppl':>10}")
for r in rows:
    print(f"{r.engine:<16} {r.dtype:<8} {r.loss:>9.2e} {r.params:>9.2e} {r.perplexity:>10.2e}")
assert all(max(r.loss, r.params) <= (1e-9 if r.dtype == "float64" else 1e-4) for r in rows)
""".replace("ENGINES", repr(list(engines)))


# The full runs in docs/results/ beside the published figures (docs/model.md, section 7).
RESULTS = '''\
def full_run(engine):
    """Last epoch's train perplexity, valid and test (training batch shape), test at 1 x 1 and
    the wall time of the 13-epoch run in docs/results/ENGINE, or None when it is not there."""
    folder = REPO / "docs" / "results" / engine
    if not (folder / "metrics.jsonl").is_file():
        return None
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()
               if line.strip()]
    last = [r for r in records if r["event"] == "epoch"][-1]
    test = [r for r in records if r["event"] == "test"][-1]
    evaluations = json.loads((folder / "evaluations.json").read_text())
    one = [e for e in evaluations if e["split"] == "test" and e["batch_size"] == 1]
    return {"train": last["train_perplexity"], "valid": last["valid_perplexity"],
            "test": test["test_perplexity"], "test 1x1": one[0]["perplexity"] if one else None,
            "minutes": records[-1]["wall_time"] / 60, "epochs": last["epoch"]}

PUBLISHED = [  # (source, train, valid, test, test 1x1, wall time)
    ("Zaremba et al. 2015, Table 1", None, 120.7, 114.5, None, ""),
    ("TensorFlow PTB tutorial", 37.99, 121.39, None, 115.91, ""),
    ("the original series, NumPy float64, one CPU", 34.69, 122.08, 116.42, 116.30, "about 10 h"),
    ("the original series, TF 1.12 eager, GPU", 43.98, 119.41, 113.64, None, "9 min"),
    ("the original series, TF 1.12 graph, GPU", 43.80, 120.42, 114.29, None, "7 min"),
]

def results_table(engines, published=True):
    """A Markdown table: the full small-config runs of ``engines``, then (``published``) the
    published ones."""
    cell = lambda v: "" if v is None else f"{v:.2f}"
    rows = ["| run | train | valid | test | test 1x1 | wall time |", "|---|---:|---:|---:|---:|---:|"]
    for engine in engines:
        r = full_run(engine)
        if r is None:
            rows.append(f"| ptb-lstm {engine} | (no run in docs/results/) | | | | |")
            continue
        rows.append(f"| **ptb-lstm {engine}**, {r['epochs']} epochs, 2 CPU cores | "
                    f"{cell(r['train'])} | {cell(r['valid'])} | {cell(r['test'])} | "
                    f"{cell(r['test 1x1'])} | {r['minutes']:.0f} min |")
    for name, *values, wall in PUBLISHED if published else []:
        rows.append(f"| {name} | " + " | ".join(cell(v) for v in values) + f" | {wall} |")
    if published:
        rows.append("\\nThe TensorFlow tutorial evaluates its test split one word at a time (batch 1, "
                    "1 step), hence its figure in the test 1x1 column.")
    display(Markdown("\\n".join(rows)))
'''
