"""Write the three notebooks of the illustrative series and execute them in place.

    python notebooks/build.py            # write and execute all three (outputs kept)
    python notebooks/build.py --no-run   # only write them

The notebooks import the toolkit's own code; nothing of the model is copied into them. Each
reads PTB from $PTB_DATA_DIR (or the user cache) and shortens its training runs when
PTB_LSTM_NOTEBOOK_STEPS is set (the test suite sets it).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent

SETUP = '''\
import os, inspect, time
import numpy as np
import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from ptb_lstm.config import PRESETS
from ptb_lstm.data import load_corpus, locate_data_dir

STEPS = int(os.environ.get("PTB_LSTM_NOTEBOOK_STEPS", "{steps}"))  # training steps of the short run
corpus = load_corpus(locate_data_dir())
print(f"PTB from {{corpus.data_dir}}: {{len(corpus.train):,}} training tokens, "
      f"vocabulary {{corpus.vocab_size:,}}; short runs of {{STEPS}} steps")

def show_source(obj):
    """Print the toolkit's own code (imported, not copied)."""
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


def agreement_cell(engine: str) -> str:
    return """\
from ptb_lstm.agreement import compare

rows = [row for dtype in ("float64", "float32")
        for row in compare(["ENGINE"], PRESETS["tiny"], corpus, dtype, steps=5)]
print(f"{'dtype':<8} {'losses':>9} {'params':>9} {'valid ppl':>10}")
for r in rows:
    print(f"{r.dtype:<8} {r.loss:>9.2e} {r.params:>9.2e} {r.perplexity:>10.2e}")
assert all(max(r.loss, r.params) <= (1e-9 if r.dtype == "float64" else 1e-4) for r in rows)
""".replace("ENGINE", engine)


def part_one() -> list:
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    return [
        md("# Part I — an LSTM language model in pure NumPy\n\n"
           "The small model of Zaremba, Sutskever & Vinyals (2015) on the Penn Treebank, with "
           "the toolkit's from-scratch NumPy engine: forward pass, back-propagation through "
           "time (BPTT) and clipped SGD. Everything below imports the engine's own code; "
           "nothing is re-implemented here. Parts II and III run the same model with "
           "TensorFlow."),
        code(SETUP.format(steps=300)),
        md("## The forward pass\n\n"
           "For each layer, with $x_t$ the input (the word embedding for layer 1, the layer "
           "below's output otherwise) and the gates in the order i, f, g, o:\n\n"
           "$$z_t = x_t W + h_{t-1} U + b \\qquad (W, U, b = \\texttt{kernel}, "
           "\\texttt{recurrent\\_kernel}, \\texttt{bias})$$\n"
           "$$i_t = \\sigma(z_t^i),\\; f_t = \\sigma(z_t^f),\\; g_t = \\tanh(z_t^g),\\; "
           "o_t = \\sigma(z_t^o)$$\n"
           "$$c_t = f_t \\odot c_{t-1} + i_t \\odot g_t, \\qquad h_t = o_t \\odot \\tanh(c_t)$$\n\n"
           "The top layer's $h_t$ goes through a softmax over the 10,000 words; the loss of a "
           "batch is the cross-entropy summed over the time steps and averaged over the batch. "
           "The engine computes every layer's $x_t W$ for many time steps in one matrix "
           "product (`_forward` organises that, in blocks of steps when it has helper threads) "
           "and writes $\\sigma(z) = \\tfrac12\\tanh(\\tfrac12 z) + \\tfrac12$, so one `tanh` "
           "activates all four gates. The steps of one layer, with $x_t W + b$ already in "
           "`gates`:"),
        code("from ptb_lstm.engines.numpy_engine import NumpyEngine\n"
             "show_source(NumpyEngine._recur)"),
        md("## Back-propagation through time\n\n"
           "Going back from the last step, with $\\delta h_t$ the gradient arriving from above "
           "(the softmax or the next layer) plus what step $t+1$ sends back through "
           "$h_t U$:\n\n"
           "$$\\delta c_t = \\delta h_t \\odot o_t \\odot (1 - \\tanh^2 c_t) + "
           "\\delta c_{t+1} \\odot f_{t+1}$$\n"
           "$$\\delta z_t^i = \\delta c_t \\odot g_t \\odot i_t(1-i_t),\\quad "
           "\\delta z_t^f = \\delta c_t \\odot c_{t-1} \\odot f_t(1-f_t),$$\n"
           "$$\\delta z_t^g = \\delta c_t \\odot i_t \\odot (1-g_t^2),\\quad "
           "\\delta z_t^o = \\delta h_t \\odot \\tanh c_t \\odot o_t(1-o_t)$$\n"
           "$$\\delta h_{t-1} \\mathrel{+}= \\delta z_t U^\\top, \\qquad "
           "\\delta U = \\sum_t h_{t-1}^\\top \\delta z_t, \\quad \\delta W = \\sum_t "
           "x_t^\\top \\delta z_t, \\quad \\delta b = \\sum_t \\delta z_t, \\quad "
           "\\delta x_t = \\delta z_t W^\\top$$\n\n"
           "Truncated BPTT: the state is carried into the next batch, but no gradient flows "
           "back across the batch boundary. Every factor that does not depend on the recurrence "
           "is computed for all steps before the loop:"),
        code("show_source(NumpyEngine._backward_through_time)"),
        md("## Checking the gradients\n\n"
           "Central differences $(L(w+\\epsilon) - L(w-\\epsilon))/2\\epsilon$ in float64 on a "
           "tiny random model, for every entry of every parameter and of the incoming state. "
           "The error of an array is $\\max|g - \\hat g| / \\max|g|$; the check passes below "
           "$10^{-6}$. The plot shows every entry: its gradient against its own relative error. "
           "Tiny gradients show larger relative errors only because the finite difference "
           "itself carries an absolute rounding error of about $10^{-10}$."),
        code("from ptb_lstm.gradcheck import gradcheck\n\n"
             "rows = gradcheck(keep_values=True)\n"
             "for r in rows:\n"
             "    print(f\"{r.name:<26} {r.entries:>4} entries   error {r.error:.1e}\")\n"
             "print(f\"worst: {max(r.error for r in rows):.1e}\")\n"
             "assert max(r.error for r in rows) <= 1e-6\n\n"
             "g = np.concatenate([np.abs(r.analytic).ravel() for r in rows])\n"
             "d = np.concatenate([np.abs(r.analytic - r.numeric).ravel() for r in rows])\n"
             "keep = g > 0\n"
             "fig, ax = plt.subplots(figsize=(6, 3.5))\n"
             "ax.loglog(g[keep], d[keep] / g[keep], '.', ms=3, alpha=0.5)\n"
             "ax.set_xlabel('|gradient| of an entry'); ax.set_ylabel('|analytic - numeric| / |gradient|')\n"
             "ax.set_title('NumPy BPTT against central differences (float64)')\n"
             "ax.grid(True, which='both', alpha=0.3)\n"
             "plt.show()"),
        md("## A short training run on PTB\n\n"
           "The trainer (`ptb_lstm.train.train`) runs the paper's schedule; here it stops after "
           "`STEPS` steps of the first epoch and evaluates the valid split. `make train` runs "
           "all 13 epochs."),
        code(SHORT_RUN.format(engine="numpy")),
        code(CURVE.format(title="small config, NumPy engine, first steps")),
        md("## What the NumPy engine does to be fast\n\n"
           "A training step of the small model is 6.3 GFLOP of matrix products, mostly the "
           "10,000-way softmax and its two gradients. The engine keeps them as three large "
           "products over the whole [num_steps × batch] block, does the input projections of "
           "every layer the same way, activates all gates with one `tanh`, reuses the logits "
           "buffer, sums rows with a matrix-vector product and precomputes the BPTT factors. "
           "With several cores it holds BLAS to one thread per call and runs the large "
           "products as tasks in Python threads, beside the recurrence, which is too small "
           "for BLAS to split well. "
           "`docs/performance.md` has the measurements and what did not help. Timed here:"),
        code("from ptb_lstm.bench import bench\n"
             "r = bench('numpy', PRESETS['small'], steps=10, warmup=2)\n"
             "print(f\"train {r.train_ms_per_step:.1f} ms/step, eval {r.eval_ms_per_step:.1f} "
             "ms/step, {r.words_per_second:,.0f} words/s; 13 epochs ≈ "
             "{r.full_training_hours * 60:.0f} min\")"),
    ]


def part_two() -> list:
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    return [
        md("# Part II — the same model with TensorFlow eager execution\n\n"
           "Eager execution runs each TensorFlow operation as Python reaches it; "
           "`tf.GradientTape` records them and differentiates the recording. The engine "
           "computes exactly what the NumPy engine of Part I computes, on the same parameters, "
           "with the LSTM cell written from TensorFlow operations (not a Keras layer)."),
        code(SETUP.format(steps=100)),
        md("## The model in TensorFlow operations\n\nShared by the eager and the graph engine:"),
        code("from ptb_lstm.engines import _tf_model\n"
             "show_source(_tf_model.forward)\n"
             "show_source(_tf_model.clipped_sgd)"),
        md("## One training step with `GradientTape`\n\n"
           "No `tf.function`: every operation runs eagerly."),
        code("from ptb_lstm.engines.tf_eager import TFEagerEngine\n"
             "show_source(TFEagerEngine.train_step)"),
        md("## Does it compute the same function as the NumPy engine?\n\n"
           "Same seeded weights, same PTB batches, five training steps each, then the largest "
           "relative differences of the per-step losses, of every parameter and of the valid "
           "perplexity (tiny model, so that it runs in seconds):"),
        code(agreement_cell("tf-eager")),
        md("## A short run on PTB"),
        code(SHORT_RUN.format(engine="tf-eager")),
        code(CURVE.format(title="small config, TensorFlow eager engine, first steps")),
        md("Eager execution pays Python's and TensorFlow's dispatch cost for every one of the "
           "hundreds of small operations per step; Part III builds the same computation once "
           "as a graph."),
    ]


def part_three() -> list:
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    return [
        md("# Part III — the same model as a TensorFlow graph run in a session\n\n"
           "In graph execution the program first *describes* the computation: each TensorFlow "
           "call adds an operation (a node) to a dataflow graph, whose edges are the tensors "
           "flowing between operations. Nothing is computed until a `Session` is asked to run "
           "part of the graph, feeding values into placeholders. The engine builds one graph "
           "with `tf.compat.v1` — placeholders for the word ids, variables for the weights, for "
           "the carried LSTM state and for the learning rate, and one training operation — and "
           "runs it step by step. Eager execution stays on for the rest of the process."),
        code(SETUP.format(steps=100)),
        md("## The graph the engine builds\n\nOperation types, by count, in the real graph of "
           "the tiny model:"),
        code("import collections\n"
             "from ptb_lstm.engines.tf_graph import TFGraphEngine\n"
             "from ptb_lstm.params import init_params\n\n"
             "tiny = PRESETS['tiny']\n"
             "engine = TFGraphEngine(tiny, init_params(tiny, corpus.vocab_size))\n"
             "ops = engine.graph.get_operations()\n"
             "print(f'{len(ops)} operations in the graph')\n"
             "for kind, n in collections.Counter(op.type for op in ops).most_common(15):\n"
             "    print(f'{n:6}  {kind}')"),
        md("The operations of the first time step of the first layer, in the training part of "
           "the graph (compare with the equations of Part I):"),
        code("step = [op for op in ops if op.name.startswith('train_') and '/' in op.name\n"
             "        and op.type in ('MatMul', 'AddV2', 'Sigmoid', 'Tanh', 'Mul', 'Split')]\n"
             "for op in step[:14]:\n"
             "    print(f\"{op.type:<8} {op.name:<40} <- {', '.join(t.name for t in op.inputs)}\")"),
        md("The whole training step is one operation to run; the session executes only the "
           "part of the graph it needs:"),
        code("show_source(TFGraphEngine.train_step)"),
        md("## The same agreement check"),
        code(agreement_cell("tf-graph")),
        md("## A short run on PTB"),
        code(SHORT_RUN.format(engine="tf-graph")),
        code(CURVE.format(title="small config, TensorFlow graph engine, first steps")),
        md("## The three engines' full runs\n\n"
           "Read from `docs/results/` (written by the reproduction runs, 13 epochs of the small "
           "config per engine) when it is there:"),
        code("import json, pathlib\n"
             "results = pathlib.Path(os.environ.get('PTB_LSTM_REPO', '..')) / 'docs' / 'results'\n"
             "found = sorted(results.glob('*/metrics.jsonl')) if results.is_dir() else []\n"
             "if not found:\n"
             "    print('docs/results/ holds no full runs yet (they come with the reproduction).')\n"
             "for path in found:\n"
             "    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]\n"
             "    epochs = [r for r in records if r.get('event') == 'epoch']\n"
             "    test = [r for r in records if r.get('event') == 'test']\n"
             "    if epochs:\n"
             "        last = epochs[-1]\n"
             "        print(f\"{path.parent.name:<12} epochs {last['epoch']:>2}  train {last['train_perplexity']:7.2f}  \"\n"
             "              f\"valid {last['valid_perplexity']:7.2f}  \"\n"
             "              f\"test {test[-1]['test_perplexity'] if test else float('nan'):7.2f}\")"),
        md("Their learning curves, as `make reproduce` draws them with `ptb-lstm plot` "
           "(the table beside the paper's is in `docs/results.md`):"),
        code("from IPython.display import Image, display\n"
             "figure = results.parent / 'figures' / 'results-curves.png'\n"
             "display(Image(filename=str(figure))) if figure.is_file() else "
             "print('no figure yet: run make reproduce')"),
    ]


NOTEBOOKS = {
    "1_numpy.ipynb": part_one,
    "2_tf_eager.ipynb": part_two,
    "3_tf_graph.ipynb": part_three,
}


def write(name: str) -> Path:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = NOTEBOOKS[name]()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    path = HERE / name
    nbformat.write(notebook, path)
    return path


def execute(path: Path, timeout: int = 900) -> float:
    """Run every cell in order, keeping the outputs; returns the seconds it took."""
    notebook = nbformat.read(path, as_version=4)
    started = time.perf_counter()
    NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    nbformat.write(notebook, path)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-run", action="store_true", help="write without executing")
    parser.add_argument("--only", choices=NOTEBOOKS, action="append",
                        help="write (and run) only this notebook (repeatable)")
    args = parser.parse_args()
    for name in args.only or NOTEBOOKS:
        path = write(name)
        if not args.no_run:
            print(f"{name}: executed in {execute(path):.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
