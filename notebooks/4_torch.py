# %% [markdown]
# # Part IV — the same model in PyTorch
#
# Part I wrote every derivative by hand. Here PyTorch computes them: its **autograd** records
# every operation on a tensor that asks for gradients, as the operation runs, and plays the
# record backwards on demand. This part is written for a reader who knows Part I: the model,
# the index conventions, the loss summed over time and averaged over the batch, truncated BPTT,
# global-norm clipping and SGD, the relative error and the pure `step_function` of Part I (g).
# Everything PyTorch adds that this part uses is shown here, each with a cell that runs it
# (dtypes, threads, autograd, memory shared between tensors, `nn.LSTM` and its parameters,
# devices), so nothing else from outside is needed. By the end you can write the whole training
# step in PyTorch (loss and gradients by autograd, then global-norm clipping and SGD), check it
# against Part I's reference engine to rounding, and read the toolkit's `torch` engine
# (`ptb_lstm/engines/torch_engine.py`), which runs the model with `torch.nn.LSTM`, on a CPU or a
# CUDA GPU.
#
# Contents: (a) tensors, parameters, dtypes and threads · (b) autograd · (c) the LSTM layer by
# hand against `nn.LSTM`: the parameter mapping · (d) devices · (e) the embedding's gradient ·
# (f) clipping by the global norm · (g) the whole step (gradients, clipping, SGD), checked
# against the reference engine · (h) the toolkit's `torch` engine · (i) a short run on PTB ·
# (j) exercises · (k) their solutions.

# %%
import inspect
import os
import pathlib
import tempfile

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

from ptb_lstm.config import PRESETS
from ptb_lstm.data import batches, load_corpus, locate_data_dir
from ptb_lstm.dropout import step_masks
from ptb_lstm.engines.numpy_reference import ReferenceEngine
from ptb_lstm.params import init_params

STEPS = int(os.environ.get("PTB_LSTM_NOTEBOOK_STEPS", "100"))  # steps of the short runs
REPO = pathlib.Path(os.environ.get("PTB_LSTM_REPO", ".."))  # the repository (docs/results)
corpus = load_corpus(locate_data_dir())  # $PTB_DATA_DIR, or the user cache (downloading once)
print(
    f"PTB: {len(corpus.train):,} training tokens, vocabulary {corpus.vocab_size:,}; "
    f"short runs of {STEPS} steps"
)


def show_source(obj):
    """Show the toolkit's own code (imported, not copied)."""
    display(Markdown("```python\n" + inspect.getsource(obj) + "\n```"))


def relative_error(got, expected):
    """max |got - expected| / max |expected|: one number per array (or scalar)."""
    expected = np.asarray(expected)
    return float(np.abs(np.asarray(got) - expected).max() / np.abs(expected).max())


# %% [markdown]
# `relative_error` is Part I's measure, the same function: for an array $a$ against a reference
# $\hat a$, $\max_k |a_k - \hat a_k| / \max_k |\hat a_k|$, one number per array. It takes NumPy
# arrays; a tensor is turned into one first (section (a) shows how).
#
# ## (a) Tensors, parameters, dtypes and threads
#
# A `torch.Tensor` is PyTorch's array: a shape, a `dtype`, and a `device`, the memory it lives in
# (the CPU's, or a GPU's: section (d)). Most NumPy operations have a PyTorch twin (`@`, `+`,
# `torch.tanh`, `torch.sigmoid`, `.sum(dim=...)` for `.sum(axis=...)`, `torch.cat` for
# `np.concatenate`, `torch.stack` for `np.stack`, `torch.linspace` for `np.linspace`,
# `torch.zeros_like` for `np.zeros_like`, `.reshape(-1)` and `.pow(2)` as in NumPy, `.clone()` for
# `.copy()`, `.split(H, dim=1)` to cut a [B, 4H] block into four [B, H] pieces; `x[t]` is a view of
# a slice, as in NumPy). `@` broadcasts as in NumPy: a [T, B, H] tensor `@` an [H, V] one is [T, B,
# V], the product of every row with the matrix, as the logits of (g) are made. Python's built-in
# `sum` over tensors adds them with `+` and so gives a tensor: `sum(g.pow(2).sum() for g in grads)`
# is a 0-dimensional tensor, as in (f) and (g). Three more appear in the cells below:
# `t.new_zeros(shape)` makes zeros of `t`'s dtype on `t`'s device; `torch.randn(shape, dtype=...)`
# draws standard normal numbers (NumPy's `rng.standard_normal`) from PyTorch's one global generator,
# and `torch.manual_seed(n)` seeds that generator, so that a cell draws the same numbers at every
# run. Five things matter here, most of them unlike NumPy:
#
# * **Conversion.** `torch.from_numpy(a)` wraps a NumPy array without copying it (they share
#   memory: a change to one shows in the other) and keeps its dtype; `torch.tensor(a)` copies.
#   Back: `t.numpy()` (sharing again; only for a CPU tensor that records no gradient), or
#   `t.detach().cpu().numpy()` in general; `t.item()` for a one-element tensor, `t.tolist()`.
# * **The default dtype is float32.** A NumPy array of float64 stays float64 through
#   `from_numpy`, but `torch.tensor(0.1)` and `torch.zeros(3)` are float32 unless given
#   `dtype=torch.float64`. A float64 check must make every new tensor float64 explicitly.
# * **A number does not change a tensor's dtype.** `t * 0.1` with `t` float32 is float32,
#   although a Python `float` is a float64 number: a Python number, a NumPy scalar or a
#   0-dimensional tensor of the same kind (floating point here) takes the dtype of the tensor of
#   one or more dimensions it meets. Only two such tensors promote: float32 + float64 is float64.
#   So `learning_rate * scale * g`, with Python floats for the two factors, stays in `g`'s
#   dtype, as the update of (g) needs.
# * **Integer ids.** Indexing and `torch.nn.functional.embedding` take int64 ("long") tensors.
# * **Threads.** PyTorch runs a CPU operation on its own pool of threads, by default one per
#   physical core; `torch.get_num_threads()` says how many, `torch.set_num_threads(n)` changes it
#   for the whole process. It is not NumPy's BLAS, which Part I (h) limits with
#   `threadpool_limits`; but where PyTorch's pool is OpenMP's, as in this build,
#   `threadpool_limits` limits it too while its block lasts (the cell shows it). The toolkit's
#   `torch` engine leaves the number at PyTorch's default, and so do the runs of this part.
#
# A **parameter** is a tensor with `requires_grad=True`: autograd (b) computes gradients only for
# tensors that ask for them. `torch.nn.Parameter(t)` is such a tensor, marked for the module that
# owns it: a module (`torch.nn.Module`, such as `torch.nn.LSTM`) creates its weights as
# `Parameter`s and lists them in `.parameters()` and `.named_parameters()`. A plain tensor becomes
# a parameter with `t.requires_grad_()` (the `_` suffix marks an in-place method), which is how
# the engine makes its embedding and softmax weights, which belong to no module.

# %%
import torch

print("PyTorch", torch.__version__, "| default dtype", torch.get_default_dtype())
a = np.arange(6.0).reshape(2, 3)  # NumPy float64
shared, copied = torch.from_numpy(a), torch.tensor(a)
a[0, 0] = 100.0
print(
    f"from_numpy keeps float64 ({shared.dtype}) and shares memory: {shared[0, 0].item()}; "
    f"torch.tensor copied: {copied[0, 0].item()}"
)
print(
    "torch.tensor(0.1):",
    torch.tensor(0.1).dtype,
    "| with dtype=torch.float64:",
    torch.tensor(0.1, dtype=torch.float64).dtype,
)
print(
    "0.1 stored in float32 is off by",
    f"{torch.tensor(0.1).item() - 0.1:.1e}; in float64 by",
    f"{torch.tensor(0.1, dtype=torch.float64).item() - 0.1:.1e}",
)
lstm = torch.nn.LSTM(input_size=3, hidden_size=2)
for name, parameter in lstm.named_parameters():
    print(
        f"nn.LSTM parameter {name:<13} {tuple(parameter.shape)!s:<7} "
        f"{type(parameter).__name__}, requires_grad={parameter.requires_grad}"
    )
plain = torch.zeros(4, dtype=torch.float64)
print(
    "a plain tensor: requires_grad",
    plain.requires_grad,
    "-> after requires_grad_():",
    plain.requires_grad_().requires_grad,
)
single = torch.ones(3)  # float32
print(
    "float32 tensor * 0.1:",
    (single * 0.1).dtype,
    "| * np.float64(0.1):",
    (single * np.float64(0.1)).dtype,
    "| * a 0-d float64 tensor:",
    (single * torch.tensor(0.1, dtype=torch.float64)).dtype,
    "| + a float64 tensor [3]:",
    (single + torch.ones(3, dtype=torch.float64)).dtype,
)
rows = torch.ones(5, 3, 4) @ torch.ones(4, 6)  # [T, B, H] @ [H, V]
stacked = torch.stack([torch.zeros(3), torch.ones(3)])  # two [3] -> [2, 3]
total = sum(t.sum() for t in (torch.ones(2), torch.ones(3)))
print(
    f"[5, 3, 4] @ [4, 6] -> {list(rows.shape)} | torch.stack of two [3] -> {list(stacked.shape)}"
    f" | built-in sum of two tensor sums: {type(total).__name__} {total.item()}"
)
from threadpoolctl import threadpool_limits

print("PyTorch's CPU threads:", torch.get_num_threads(), end="")
with threadpool_limits(limits=1):
    print(" | inside threadpool_limits(limits=1):", torch.get_num_threads(), end="")
print(" | after it:", torch.get_num_threads())

# %% [markdown]
# ## (b) Autograd
#
# **Recording.** PyTorch runs each operation at once, as NumPy does, and when an input requires a
# gradient it also records the operation: the result carries a `grad_fn`, the node of the recorded
# graph that knows the operation's local derivative (Part I (e), step 7's $\sigma(1-\sigma)$ for a
# sigmoid, and so on). A tensor created by you, not by an operation, is a **leaf**; gradients are
# computed for leaves that require them. The record is made anew at every forward pass, so a Python
# loop over time steps is simply recorded step by step, whatever its length.
#
# **Playing it backwards.** Two ways, the same numbers:
#
# * `loss.backward()` runs the chain rule from a scalar `loss` back to every leaf that requires a
#   gradient and **adds** the result into each leaf's `.grad` (a second backward pass adds again:
#   reset with `p.grad = None` between steps). Then it frees the record.
# * `torch.autograd.grad(loss, [p1, p2, ...])` returns the gradients as a tuple and leaves `.grad`
#   alone: the functional form, used by the engine and by the pure step of (g).
#
# **Updating a parameter.** `p -= lr * g` on a leaf that requires a gradient is refused: autograd
# would have to record the update as part of the graph. The update goes inside `with
# torch.no_grad():`, a block in which nothing is recorded, and changes the tensor in place, so that
# it stays the same leaf. A tensor **computed** under `no_grad` is recorded from nothing: it is a
# leaf with `requires_grad=False`, whatever its inputs asked, so `requires_grad_()` then makes it a
# fresh parameter (inside the block or after it: `requires_grad_()` is allowed in both); that is
# how `torch_update` of (g) makes its new parameters. Computed outside
# `no_grad`, the same tensor would be a result with a `grad_fn`, not a leaf: `requires_grad_()`
# leaves it so (and `requires_grad_(False)` on it is refused), and the next step's record would
# reach back through every earlier update. `t.detach()` is a tensor of the same values cut off from
# the record: the carried state goes to the next batch detached, and that is PyTorch's way of the
# truncation of Part I (e): no gradient flows into the previous batch.
#
# **`detach()` copies nothing.** The detached tensor shares `t`'s memory (the same storage, the
# same `data_ptr()`). So `p.detach().requires_grad_()` is a cheap fresh leaf over `p`'s numbers,
# and `torch.from_numpy(a).requires_grad_()` a leaf over the array `a` itself: an in-place update
# of such a leaf (`sub_` under `no_grad`) changes `p`, or the caller's array `a`. Where the
# caller's array must stay as it was, either copy first (`torch.from_numpy(a.copy())`,
# `p.detach().clone()`) or update out of place, making new tensors (`p - step * g`), as the pure
# update of (g) does.
#
# **Comparing tensors.** `torch.equal(a, b)` is True when the two have the same shape and every
# value is equal (NumPy's `np.array_equal`); the relative error above measures how far apart.
#
# The cell checks it on $y = \sigma(wx)$ at $w = 0.7$, $x = 2$, whose derivative by hand (Part I,
# step 7 and the chain rule) is $\partial y/\partial w = \sigma(wx)(1 - \sigma(wx))\,x$.

# %%
w = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)  # a leaf, a parameter
x = torch.tensor(2.0, dtype=torch.float64)  # a leaf that needs no gradient
y = torch.sigmoid(w * x)  # runs now, and is recorded
print(
    "y =",
    y.item(),
    "| recorded as",
    type(y.grad_fn).__name__,
    "| w is a leaf:",
    w.is_leaf,
    "y:",
    y.is_leaf,
)
by_hand = (torch.sigmoid(w * x) * (1 - torch.sigmoid(w * x)) * x).item()
y.backward()
print(f"dy/dw: backward() put {w.grad.item():.15f} into w.grad; by hand {by_hand:.15f}")
torch.sigmoid(w * x).backward()
print(f"a second backward() adds: w.grad = {w.grad.item():.15f} (twice)")
w.grad = None
(g,) = torch.autograd.grad(torch.sigmoid(w * x), [w])
print(f"torch.autograd.grad returns {g.item():.15f} and leaves w.grad = {w.grad}")
assert abs(g.item() - by_hand) < 1e-15
try:
    w -= 0.1 * g
except RuntimeError as error:
    print("w -= 0.1 * g outside no_grad:", error)
with torch.no_grad():
    w -= 0.1 * g  # in place, not recorded
print(
    f"inside no_grad: w = {w.item():.6f}, still a leaf requiring a gradient: "
    f"{w.is_leaf and w.requires_grad}"
)
with torch.no_grad():
    made = w - 0.1 * g  # computed, not recorded
outside = w - 0.1 * g  # recorded
print(
    f"w - 0.1 * g made under no_grad: leaf {made.is_leaf}, requires_grad {made.requires_grad}; "
    f"after requires_grad_(): leaf {made.requires_grad_().is_leaf} | made outside: leaf "
    f"{outside.is_leaf} ({type(outside.grad_fn).__name__}), after requires_grad_(): leaf "
    f"{outside.requires_grad_().is_leaf}"
)
carried = torch.tanh(w * x)
print(
    "a result requires a gradient:",
    carried.requires_grad,
    "| detached:",
    carried.detach().requires_grad,
)
a = np.array([1.0, 2.0, 3.0])  # the caller's array
p = torch.from_numpy(a).requires_grad_()  # a leaf over a's memory
fresh = p.detach().requires_grad_()  # another leaf, over the same memory
print(
    "p.detach() shares p's memory:",
    fresh.data_ptr() == p.data_ptr(),
    "| fresh is a leaf requiring a gradient:",
    fresh.is_leaf and fresh.requires_grad,
)
kept = p.detach().clone()  # a copy: its own memory
with torch.no_grad():
    fresh.sub_(1.0)  # in place, on the shared memory
print(f"after fresh.sub_(1.0): the caller's a = {a}, p = {p.tolist()}, the clone {kept.tolist()}")
print(
    "torch.equal(p, kept):",
    torch.equal(p, kept),
    "| torch.equal(p, kept - 1):",
    torch.equal(p, kept - 1),
)

# %% [markdown]
# ## (c) The LSTM layer by hand, and `nn.LSTM`
#
# Part I's layer, written with tensors in the canonical layout: W = `kernel` [in, 4H], U =
# `recurrent_kernel` [H, 4H], b = `bias` [4H], rows as vectors, $z_t = x_t W + h_{t-1} U + b$, gate
# blocks **i, f, g, o**. Here *in* is the width of the layer's input $x_t$ (`nn.LSTM`'s
# `input_size`). In the toolkit's model it is H for every layer, as Part I says (the embedding has H
# columns, and each layer feeds the next H), so every `lstm_{l}_kernel` is [H, 4H]; the functions of
# this section are written for any *in*, and `nn.LSTM` takes any. The state is kept as two tensors
# `h`, `c` [B, H] that the loop rebinds at every step, instead of Part I's [T + 1, B, H] arrays:
# autograd keeps what the backward pass needs, so no row offset arises here.
#
# `torch.nn.LSTM` computes the same equations with its own parameters (the PyTorch
# documentation's formula, in this notation):
#
# $$z_t = x_t W_{ih}^\top + b_{ih} + h_{t-1} W_{hh}^\top + b_{hh}$$
#
# with `weight_ih_l0` $W_{ih}$ [4H, in] ([4H, H] in the toolkit), `weight_hh_l0` $W_{hh}$ [4H, H]
# and two biases `bias_ih_l0`, `bias_hh_l0` [4H], and its gate blocks in the order **i, f, g, o** as
# well.
#
# **Why every name ends in `_l0`.** An `nn.LSTM(num_layers=L)` names its layers' parameters
# `weight_ih_l0`, `weight_ih_l1`, ...; the suffix is the layer's index *inside that module*. The
# toolkit's engine makes each canonical layer l its **own single-layer** `nn.LSTM` (the end of
# this section says why), so every one of those modules has only a layer 0: canonical
# `lstm_{l}_...` maps onto the `_l0` parameters of the l-th module, whatever l is.
#
# So the gate order is the same as the canonical one, and what differs is the layout:
#
# | canonical (this toolkit) | `nn.LSTM` |
# |---|---|
# | `lstm_{l}_kernel` [H, 4H] | `weight_ih_l0` [4H, H] = `kernel.T` |
# | `lstm_{l}_recurrent_kernel` [H, 4H] | `weight_hh_l0` [4H, H] = `recurrent_kernel.T` |
# | `lstm_{l}_bias` [4H] | `bias_ih_l0 + bias_hh_l0` (the engine: `bias`, and zeros) |
#
# Only the sum of the two biases enters $z_t$, so any split of `bias` between them computes the
# same function; but autograd gives both the same gradient, $\sum_{t,r} \delta z_{t,r}$, and SGD
# on both would move their sum by twice the canonical step. The engine therefore sets
# `bias_hh_l0` to zero and switches its gradient off (`requires_grad_(False)`). Other libraries
# order the gates otherwise (TensorFlow 1's `LSTMCell` used i, g, f, o, calling g "j"), which is
# why a mapping must be checked, not assumed.
#
# `nn.LSTM` takes time-major input by default, x [T, B, in], and the state as `(h0, c0)`, each
# [num_layers, B, H]; it returns the outputs $h_t$ of every step [T, B, H] and the final
# `(h, c)`, each [num_layers, B, H]. The cell checks three things in float64: the hand-written
# layer on the canonical form of an `nn.LSTM`'s own (random, both biases non-zero) parameters
# against that `nn.LSTM`; an `nn.LSTM` loaded from canonical parameters by the table against
# Part I's reference engine; and that a wrong gate order, or both biases trained, is caught.


# %%
def lstm_layer(x, h, c, W, U, b):
    """Part I's LSTM layer in the canonical layout: x [T, B, in], h and c [B, H], W [in, 4H],
    U [H, 4H], b [4H] -> every output h(t) [T, B, H] and the final (h, c)."""
    H = U.shape[0]
    outputs = []
    for t in range(x.shape[0]):
        z = x[t] @ W + h @ U + b  # z(t) = x(t) W + h(t-1) U + b   [B, 4H]
        i, f, g, o = z.split(H, dim=1)  # the blocks i, f, g, o
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)  # c(t) = f c(t-1) + i g
        h = torch.sigmoid(o) * torch.tanh(c)  # h(t) = o tanh(c(t))
        outputs.append(h)
    return torch.stack(outputs), (h, c)


T, B, H = 5, 3, 4
torch.manual_seed(0)
lstm = torch.nn.LSTM(H, H, dtype=torch.float64)  # its own random weights and biases
x = torch.randn(T, B, H, dtype=torch.float64)
h0, c0 = torch.randn(B, H, dtype=torch.float64), torch.randn(B, H, dtype=torch.float64)
with torch.no_grad():
    theirs, (h_T, c_T) = lstm(x, (h0[None], c0[None]))  # state [num_layers = 1, B, H]
    W, U = lstm.weight_ih_l0.T, lstm.weight_hh_l0.T  # canonical [in, 4H], [H, 4H]
    b = lstm.bias_ih_l0 + lstm.bias_hh_l0  # the canonical bias: the sum
    ours, (h_mine, c_mine) = lstm_layer(x, h0, c0, W, U, b)
print(
    "nn.LSTM against the hand-written layer, relative error of the outputs",
    f"{relative_error(ours.numpy(), theirs.numpy()):.1e}, of the final c",
    f"{relative_error(c_mine.numpy(), c_T[0].numpy()):.1e}",
)

# an nn.LSTM loaded from canonical parameters, against Part I's reference engine (no dropout)
config = PRESETS["tiny"].replace(num_layers=1)
params = init_params(config, corpus.vocab_size, np.float64)
engine = ReferenceEngine(config, params, dtype="float64")
inputs, targets = next(batches(corpus.train, config.batch_size, config.num_steps))
engine.reset_state(config.batch_size)
layer = engine.forward(inputs, engine.state).layers[0]  # h [T + 1, B, H], x [T, B, H]
lstm = torch.nn.LSTM(config.hidden_size, config.hidden_size, dtype=torch.float64)
with torch.no_grad():
    lstm.weight_ih_l0.copy_(torch.from_numpy(params["lstm_0_kernel"]).T)
    lstm.weight_hh_l0.copy_(torch.from_numpy(params["lstm_0_recurrent_kernel"]).T)
    lstm.bias_ih_l0.copy_(torch.from_numpy(params["lstm_0_bias"]))
    lstm.bias_hh_l0.zero_()
    outputs, _ = lstm(torch.from_numpy(layer.x))  # no state given: zeros
print(
    "nn.LSTM with the canonical parameters against the reference engine's h(0..T-1):",
    f"{relative_error(outputs.numpy(), layer.h[1:]):.1e}",
)

# a wrong mapping: the canonical blocks taken in the order i, g, f, o
order = [0, 2, 1, 3]
with torch.no_grad():
    wrong_W = W.reshape(H, 4, H)[:, order].reshape(H, 4 * H)
    wrong_U = U.reshape(H, 4, H)[:, order].reshape(H, 4 * H)
    wrong_b = b.reshape(4, H)[order].reshape(4 * H)
    wrong, _ = lstm_layer(x, h0, c0, wrong_W, wrong_U, wrong_b)
error = relative_error(wrong.numpy(), theirs.numpy())
print(f"gate blocks read as i, g, f, o: relative error {error:.1e}")

# the two biases get the same gradient
lstm = torch.nn.LSTM(H, H, dtype=torch.float64)
out, _ = lstm(x, (h0[None], c0[None]))
d_ih, d_hh = torch.autograd.grad(out.sum(), [lstm.bias_ih_l0, lstm.bias_hh_l0])
print(
    "gradient of bias_ih_l0 against bias_hh_l0, relative error",
    f"{relative_error(d_hh.numpy(), d_ih.numpy()):.1e}: both trained, the sum moves twice as far",
)

# %% [markdown]
# The first two errors are rounding (0, or about $10^{-16}$: `nn.LSTM` adds its two biases and
# sums its products in another order); the wrong gate order is off by order 1. An L-layer model
# is L such layers, each fed the previous one's outputs after the dropout mask: the engine makes
# each layer its own single-layer `nn.LSTM` (hence the `_l0` of the table), because an
# `nn.LSTM(num_layers=L, dropout=p)` would draw its own dropout masks between its layers, and
# the toolkit's masks come from `ptb_lstm.dropout`, the same for every engine (Part I (b)).
#
# **`nn.LSTM` on weights it does not own.** A module owns its parameters: `lstm(x, state)` reads
# `lstm.weight_ih_l0` and the rest, and autograd gives their gradients, in `nn.LSTM`'s layout.
# A pure step function instead receives canonical tensors and must return gradients for *them*.
# `torch.func.functional_call(module, tensors, args)` runs a module's forward with the tensors of
# the dict `tensors` (by parameter name) standing in for its own, for that one call. Handing it
# `W.T`, `U.T`, `b` and a zero `bias_hh_l0` (as the table says) runs `nn.LSTM`'s kernel on the
# canonical tensors, and autograd carries the gradients through the transposes back to `W`, `U`
# and `b`. The module's own weights are then never read, so it is made on the `meta` device,
# which records shapes and dtypes and allocates no memory. `nn_lstm_layer` below has
# `lstm_layer`'s arguments and results; the cell checks that the two give the same outputs and
# the same gradients for `W`, `U`, `b` (float64, on the CPU). The pure step of (g) can use either.


# %%
def nn_lstm_layer(x, h, c, W, U, b):
    """lstm_layer's function computed by nn.LSTM's kernel on the canonical tensors: x [T, B, in],
    h and c [B, H], W [in, 4H], U [H, 4H], b [4H] -> outputs [T, B, H] and the final (h, c)."""
    lstm = torch.nn.LSTM(W.shape[0], U.shape[0], device="meta", dtype=W.dtype)  # shapes only
    tensors = {
        "weight_ih_l0": W.T,  # [4H, in]
        "weight_hh_l0": U.T,  # [4H, H]
        "bias_ih_l0": b,
        "bias_hh_l0": torch.zeros_like(b),  # a constant: only b is trained
    }
    outputs, (h, c) = torch.func.functional_call(lstm, tensors, (x, (h[None], c[None])))
    return outputs, (h[0], c[0])


leaves = [v.detach().clone().requires_grad_() for v in (W, U, b)]  # canonical leaves
results = {}
for layer_function in (lstm_layer, nn_lstm_layer):
    outputs, (h_T, c_T) = layer_function(x, h0, c0, *leaves)
    weights = torch.linspace(-1, 1, H, dtype=torch.float64)  # H weights from -1 to 1
    loss = (outputs * weights).sum() + c_T.sum()  # a scalar that every unit enters differently
    results[layer_function.__name__] = (outputs, torch.autograd.grad(loss, leaves))
(ours, our_grads), (theirs, their_grads) = results.values()
print(
    "nn_lstm_layer against lstm_layer, relative error of the outputs",
    f"{relative_error(theirs.detach().numpy(), ours.detach().numpy()):.1e}; of the gradients "
    "of W, U, b",
    ", ".join(
        f"{relative_error(t.numpy(), o.numpy()):.1e}"
        for t, o in zip(their_grads, our_grads, strict=True)
    ),
)
print("the gradients have the canonical shapes:", [tuple(g.shape) for g in their_grads])

# %% [markdown]
# ## (d) Devices: what runs where
#
# Every tensor lives on one **device**: `cpu` (main memory) or `cuda:0`, `cuda:1`, ... (an NVIDIA
# GPU's memory). An operation runs on the device of its inputs, and all its inputs must be on
# the same one: `cpu_tensor + cuda_tensor` raises "Expected all tensors to be on the same
# device" (a 0-dimensional CPU tensor is the one exception: it is taken as a number). Nothing
# moves by itself:
#
# * `t.to(device)` returns a copy on `device`, `t.to(dtype)` a copy converted to `dtype` on the
#   same device, `t.to(device, dtype)` both; `t.cpu()` is `t.to("cpu")`. When `t` already has
#   that device and dtype, `.to` returns **`t` itself**, no copy: the result shares `t`'s memory,
#   and an in-place change to one is a change to the other ((b)). Where a copy is needed
#   whatever the device, write `t.to(device).clone()` (or `.to(..., copy=True)`). Tensors can
#   also be made there directly: `torch.zeros(3, device=device)`.
# * `module.to(device)` moves a module's parameters **in place** (the same `Parameter` objects),
#   and so does creating it with `device=...`, as the engine does: `nn.LSTM(..., device=...)`.
# * A CUDA operation is queued and returns at once; the CPU waits only when it needs a value:
#   `.item()`, `.tolist()`, `.cpu()`, `.numpy()` (which refuses a CUDA tensor: `.cpu()` first).
#   The engine's `train_step` asks for the loss and the norm together, with one `.tolist()`, so
#   that a step waits for the GPU once.
# * `torch.cuda.is_available()` says whether PyTorch sees a usable GPU. The usual idiom, and the
#   engine's `--device auto`, is `cuda` when it does, else `cpu`.
#
# On a GPU, float32 matrix products may use TensorFloat-32 (TF32), which rounds their inputs to
# 10 bits of mantissa; the engine switches it off, so that the GPU computes the function the
# other engines compute. Here is the engine's choice of device. Two names in it come from the
# toolkit:
#
# * `cuda_available()` (in `ptb_lstm/engines/torch_engine.py`, beside `pick_device`):
#   `torch.cuda.is_available()`, with the warning a CUDA build of PyTorch gives while it probes a
#   machine without a GPU silenced;
# * `UserError` (in `ptb_lstm/errors.py`): the exception for a mistake the user can fix; the command
#   line prints its message on one line and exits with status 2, no traceback.
#
# **What runs on a GPU unchanged, and what does not.** Code that makes its tensors on the device of
# the tensors it was given, and turns results into NumPy only with `.detach().cpu().numpy()` (or
# `.item()`, `.tolist()`), runs on either device. The toolkit's engine is written so: its `_tensor`
# and `_ids` put arrays on its device, its `_array` brings tensors back with
# `detach().cpu().numpy().copy()` (the sources are shown in (h)). So are the pure step and update of
# (g): they make the ids on the parameters' device and return tensors, and only their checks
# convert, at that boundary. The small cells of (a) to (f) call `.numpy()` on CPU tensors and are
# CPU-only. Every cell of this notebook runs on the CPU (the line below says whether this machine
# has a GPU at all); the engine on a GPU is held to the NumPy engine by `benchmarks/gpu_check.sh`,
# on a machine with one.

# %%
from ptb_lstm.engines.torch_engine import pick_device

show_source(pick_device)
device = pick_device("auto")
print("CUDA GPU visible:", torch.cuda.is_available(), "| --device auto picks:", device)
t = torch.ones(2, 3, dtype=torch.float64)
moved = t.to(device)
print(f"t on {t.device}; t.to({device}) is on {moved.device}; the same object: {moved is t}")
print(
    "t.to(torch.float32):",
    t.to(torch.float32).dtype,
    "| t.to(device, torch.float32):",
    t.to(device, torch.float32).dtype,
    "| t.to(torch.float64) is t:",
    t.to(torch.float64) is t,
)
same = t.to(torch.float64)  # t's own dtype: t itself
copy = t.to(torch.float64).clone()  # a copy
t[0, 0] = 7.0
print(
    f"after t[0, 0] = 7: t.to(torch.float64)[0, 0] = {same[0, 0].item()}, "
    f"the clone's {copy[0, 0].item()}"
)

# %% [markdown]
# ## (e) The embedding's gradient
#
# Part I's embedding gradient is a scatter-add (step 9): every position adds its $\delta e_t$ into
# the row of its word, `np.add.at(dE, ids, de)`, and a word used twice gets both contributions.
# PyTorch gives the same numbers in one of two forms:
#
# * **dense**: `E[ids]` (indexing) or `torch.nn.functional.embedding(ids, E)` gives `E` a dense
#   gradient [V, H], already summed per word, zero outside the batch's words;
# * **sparse**: `torch.nn.functional.embedding(ids, E, sparse=True)` gives a sparse COO tensor,
#   one row **per position**, with the position's word id as its index: a word used twice has two
#   rows. `.coalesce()` sums the rows of equal index into one, leaving one row per distinct word;
#   `.to_dense()` makes the [V, H] array. A sparse tensor's `.indices()` and `.values()` (the
#   word ids [1, rows] and the rows [rows, H]) refuse an uncoalesced tensor ("Cannot get values
#   on an uncoalesced tensor, please call .coalesce() first"), so that nobody reads duplicated
#   rows as if each word had one; `._indices()` and `._values()` give the rows as they are
#   stored, duplicates and all. The leading underscore marks them as low-level accessors,
#   outside PyTorch's public API; they appear here only to show the uncoalesced rows (the cell
#   below, and the wrong answer to exercise 2).
#
# The sparse form avoids a [V, H] array of mostly zeros (10,000 × 200 for the small config, of which
# a batch touches a few hundred rows), and the engine updates only those rows (`E.index_add_(0,
# rows, values)` adds each row of `values` into the row of `E` its index names). The global norm of
# Part I (g) is that of the dense gradient, so each word's row must be summed before it is squared:
# the engine coalesces first (Part I's exercise 2 is the same sum in NumPy). TensorFlow's
# `IndexedSlices` (Parts II and III) are the same idea.

# %%
V, H = 6, 2
E = torch.randn(V, H, dtype=torch.float64, requires_grad=True)
ids = torch.tensor([[1, 3], [1, 4]])  # [T, B]: word 1 twice
upstream = torch.randn(2, 2, H, dtype=torch.float64)  # a gradient arriving at the rows
(dense,) = torch.autograd.grad((E[ids] * upstream).sum(), [E])
(sparse,) = torch.autograd.grad(
    (torch.nn.functional.embedding(ids, E, sparse=True) * upstream).sum(), [E]
)
print("sparse, as it comes: indices", sparse._indices().tolist(), "(a row per position)")
merged = sparse.coalesce()
print("coalesced: indices", merged.indices().tolist(), "(a row per distinct word)")
by_numpy = np.zeros((V, H))
np.add.at(by_numpy, ids.numpy(), upstream.numpy())  # Part I's step 9
print(
    "dense against np.add.at:",
    relative_error(dense.numpy(), by_numpy),
    "| coalesced sparse, made dense, against np.add.at:",
    relative_error(merged.to_dense().numpy(), by_numpy),
)
print(
    f"squared norm: dense {dense.pow(2).sum().item():.6f}, coalesced "
    f"{merged.values().pow(2).sum().item():.6f}, rows as they come (wrong) "
    f"{sparse._values().pow(2).sum().item():.6f}"
)

# %% [markdown]
# ## (f) Clipping by the global norm
#
# Part I (g): $n = \sqrt{\sum_\theta \lVert \delta\theta \rVert^2}$, every gradient multiplied by
# `max_grad_norm / max(n, max_grad_norm)`. PyTorch's own `torch.nn.utils.clip_grad_norm_` works
# on the `.grad` of a list of parameters and multiplies them by
# `min(1, max_grad_norm / (n + 1e-6))`: a factor off by about $10^{-6}/n$ relative whenever it
# clips. That is harmless for training, but it is not the function the other engines compute,
# so the engine writes the clipping out, operation for operation as the NumPy engines do. The cell
# compares the two on the same gradients.

# %%
torch.manual_seed(1)
grads = [torch.randn(20, 8, dtype=torch.float64), torch.randn(8, dtype=torch.float64)]
max_grad_norm = 5.0
norm = torch.sqrt(sum(g.pow(2).sum() for g in grads)).item()
written_out = [g * (max_grad_norm / max(norm, max_grad_norm)) for g in grads]
holders = [torch.zeros_like(g, requires_grad=True) for g in grads]
for holder, g in zip(holders, grads, strict=True):
    holder.grad = g.clone()
returned = torch.nn.utils.clip_grad_norm_(holders, max_grad_norm)
print(
    f"norm {norm:.6f} (clip_grad_norm_ returns {returned.item():.6f}) -> written out "
    f"{torch.sqrt(sum(g.pow(2).sum() for g in written_out)).item():.10f}, clip_grad_norm_ "
    f"{torch.sqrt(sum(h.grad.pow(2).sum() for h in holders)).item():.10f}"
)
error = max(
    relative_error(h.grad.numpy(), g.numpy()) for h, g in zip(holders, written_out, strict=True)
)
print(f"relative error of clip_grad_norm_'s gradients against the written-out ones: {error:.1e}")

# %% [markdown]
# ## (g) The whole step in PyTorch, checked against the reference engine
#
# Part I (g) writes a training step as two pure functions: `step_function` returns (loss,
# gradients, new state) from (parameters, carried state, inputs, targets, masks), and
# `update_function` returns the clipped SGD update's new parameters and the norm; neither
# changes its arguments. The PyTorch forms below have the same arguments and results (tensors
# where Part I has arrays) and are written for any number of layers; autograd replaces the
# whole backward half of Part I's `step_function`. Their conventions:
#
# * `params`: a dict from the canonical names to tensors, each a leaf with `requires_grad=True`,
#   all on one device and of one dtype, in the canonical layout (the layer functions of (c) read
#   it directly). **L, the number of layers, is read from the names, as Part I's `step_function`
#   does: the number of names ending in `_recurrent_kernel`**; `state` must hold L pairs, and a
#   state of another length is refused.
# * `state`: L pairs `(h, c)` of tensors [B, H], layer 0 first; `inputs`, `targets`: NumPy ids
#   [B, T], as the stream folding gives them; `masks`: L + 1 tensors [T, B, H] (index 0 on the
#   embedding output, index l + 1 on layer l's output) or `None`, no dropout. The state and the
#   masks are on the parameters' device, in their dtype, and `torch_step` checks it: a tensor
#   of another dtype or device raises `ValueError`, naming `state` or `masks`. It refuses rather
#   than converts, because the mistake would otherwise pass unseen: by (a)'s rule float64 masks
#   times float32 activations are float64, and the whole step after them would run in float64.
# * time-major, as in Part I: `ids = inputs.T` [T, B], made on the parameters' device; logits
#   [T, B, V];
# * the loss: `torch.nn.functional.cross_entropy(logits, targets, reduction="sum")` over the
#   T·B positions (it takes the logits as rows [T·B, V] and the targets as int64 [T·B]; it is
#   Part I's log-softmax and NLL, also without forming p), divided by B; returned as a Python
#   float (`.item()`, which waits for a GPU once);
# * the gradients: `torch.autograd.grad(loss, tensors)`, returned as **tensors** by name, on the
#   parameters' device; the embedding's dense, from indexing;
# * the new state: the last step's `(h, c)` of each layer, **detached**;
# * `layer_function`: `lstm_layer` of (c) by default, or `nn_lstm_layer`, the same function by
#   `nn.LSTM`'s kernel.
#
# Nothing in it calls `.numpy()`: the results stay tensors on the parameters' device, and only
# the checks turn them into NumPy arrays, with `as_array` (`.detach().cpu().numpy()`), to compare
# them with the reference engine's. That is what makes the functions of this section
# device-safe ((d)).
#
# The first check, as Part I's: the tiny config with dropout 0.5 (its masks from the shared
# `step_masks`), a carried state that is not zero, two layers and three, float64 throughout (the
# parameters from the float64 NumPy arrays with `torch.from_numpy`, the masks and the state as
# well), against the reference engine's `gradients` on the same batch: every relative error at
# most $10^{-12}$. Then the same in float32, and with `nn_lstm_layer`; then the float32 step
# against a float32 reference, and a step refused for masks of the wrong dtype.
#
# **Which reference for float32.** Part I compared its float32 `step_function` with the float32
# reference engine, which does the same operations in the same order, so the two agree exactly,
# and any difference is a mistake. PyTorch's operations are its own, so a float32 reference
# rounds differently from it, and the difference of the two mixes two engines' roundings.
# Against the float64 reference, itself within about $10^{-16}$ of exact arithmetic, the whole
# difference is PyTorch's float32 rounding: how far the float32 step is from the function. That
# is the comparison of this part (and of `TorchEngine` in (h)); the cell prints the other one
# beside it.


# %%
from ptb_lstm.engines.torch_engine import TORCH_DTYPES


def as_array(tensor):
    """A tensor on any device, as a NumPy array: the boundary between PyTorch and the checks."""
    return tensor.detach().cpu().numpy()


def torch_step(params, state, inputs, targets, masks=None, layer_function=lstm_layer):
    """(loss, {name: gradient tensor}, new state) of one batch; changes none of its arguments.
    params: canonical name -> leaf tensor with requires_grad, L layers read from the names;
    state: L pairs (h, c) [B, H]; inputs, targets [B, T] (NumPy); masks: L + 1 [T, B, H] or None."""
    L = sum(name.endswith("_recurrent_kernel") for name in params)
    if len(state) != L:
        raise ValueError(f"state holds {len(state)} pairs (h, c); params have {L} layers")
    like = params["embedding"]  # the parameters' dtype and device
    for argument, tensors in (("state", [t for pair in state for t in pair]), ("masks", masks)):
        for tensor in tensors or []:
            if (tensor.dtype, tensor.device) != (like.dtype, like.device):
                raise ValueError(
                    f"{argument}: a {tensor.dtype} tensor on {tensor.device}; the parameters "
                    f"are {like.dtype} on {like.device}"
                )
    device = like.device
    ids = torch.from_numpy(np.ascontiguousarray(inputs.T, np.int64)).to(device)  # [T, B]
    tt = torch.from_numpy(np.ascontiguousarray(targets.T, np.int64)).to(device)  # [T, B]
    T, B = ids.shape
    x = params["embedding"][ids]  # [T, B, H], recorded: a dense gradient for the embedding
    new_state = []
    for layer in range(L):
        if masks is not None:
            x = x * masks[layer]  # the mask below the layer (index 0: the embedding output)
        h, c = state[layer]
        x, (h, c) = layer_function(
            x,
            h,
            c,
            params[f"lstm_{layer}_kernel"],
            params[f"lstm_{layer}_recurrent_kernel"],
            params[f"lstm_{layer}_bias"],
        )
        new_state.append((h.detach(), c.detach()))  # carried on, with no gradient through it
    if masks is not None:
        x = x * masks[L]  # the top output's mask
    logits = x @ params["softmax_kernel"] + params["softmax_bias"]  # [T, B, V]
    loss = (
        torch.nn.functional.cross_entropy(
            logits.reshape(T * B, -1), tt.reshape(-1), reduction="sum"
        )
        / B
    )  # summed over the positions, averaged over the rows
    names = list(params)
    grads = torch.autograd.grad(loss, [params[n] for n in names])
    return loss.item(), dict(zip(names, grads, strict=True)), new_state


def torch_tensors(engine, dtype, masks):
    """The reference engine's parameters (leaves), carried state and masks as tensors of dtype
    ("float64": over the engine's own arrays, no copy; "float32": converted copies)."""
    tensor = TORCH_DTYPES[dtype]
    params = {n: torch.from_numpy(a).to(tensor).requires_grad_() for n, a in engine.params.items()}
    state = [
        (torch.from_numpy(h).to(tensor), torch.from_numpy(c).to(tensor)) for h, c in engine.state
    ]
    return params, state, None if masks is None else [torch.from_numpy(m).to(tensor) for m in masks]


def check_torch_step(num_layers, dtype, layer_function=lstm_layer, reference="float64"):
    """Relative errors of torch_step in dtype against the reference engine's gradients (in
    the dtype `reference`), on the second batch, from the state the first one left."""
    config = PRESETS["tiny"].replace(dropout=0.5, num_layers=num_layers)
    engine = ReferenceEngine(config, init_params(config, corpus.vocab_size, np.float64), reference)
    stream = batches(corpus.train, config.batch_size, config.num_steps)
    engine.train_step(*next(stream), 1.0, step_masks(config, 0, dtype=np.dtype(reference)))
    inputs, targets = next(stream)
    masks = step_masks(config, 1, dtype=np.dtype(reference))
    expected = engine.gradients(inputs, targets, engine.state, masks)
    params, state, tensor_masks = torch_tensors(engine, dtype, masks)
    loss, grads, new_state = torch_step(
        params, state, inputs, targets, tensor_masks, layer_function
    )
    errors = {"loss": relative_error(loss, expected.loss)}
    errors |= {n: relative_error(as_array(g), expected.params[n]) for n, g in grads.items()}
    errors["new state"] = max(
        relative_error(as_array(mine), theirs)
        for pair, pairs in zip(new_state, expected.final_state, strict=True)
        for mine, theirs in zip(pair, pairs, strict=True)
    )
    return errors


table = {(L, d): check_torch_step(L, d) for L in (2, 3) for d in ("float64", "float32")}
print(f"{'relative error':<26}" + "".join(f"{f'{L} layers, {d}':>20}" for L, d in table))
for name in table[3, "float64"]:
    print(
        f"{name:<26}"
        + "".join(f"{e[name]:>20.1e}" if name in e else f"{'':>20}" for e in table.values())
    )
assert all(max(e.values()) <= 1e-12 for (L, d), e in table.items() if d == "float64")
assert all(max(e.values()) <= 1e-4 for (L, d), e in table.items() if d == "float32")
fused = {d: max(check_torch_step(2, d, nn_lstm_layer).values()) for d in ("float64", "float32")}
print(
    "with layer_function=nn_lstm_layer, 2 layers, the worst of them: float64",
    f"{fused['float64']:.1e}, float32 {fused['float32']:.1e}",
)
assert fused["float64"] <= 1e-12 and fused["float32"] <= 1e-4
baseline = {L: max(check_torch_step(L, "float32", reference="float32").values()) for L in (2, 3)}
print(
    "float32 against a float32 reference engine, the worst of them: 2 layers",
    f"{baseline[2]:.1e}, 3 layers {baseline[3]:.1e} (against the float64 reference:",
    f"{max(table[2, 'float32'].values()):.1e}, {max(table[3, 'float32'].values()):.1e})",
)
assert max(baseline.values()) <= 1e-4
config = PRESETS["tiny"].replace(num_layers=1)
engine = ReferenceEngine(config, init_params(config, corpus.vocab_size, np.float64), "float64")
engine.reset_state(config.batch_size)
single_params, single_state, _ = torch_tensors(engine, "float32", None)
shape = (config.num_steps, config.batch_size, config.hidden_size)
double_masks = [torch.ones(shape, dtype=torch.float64)] * 2  # L + 1 = 2 masks, float64
inputs, targets = next(batches(corpus.train, config.batch_size, config.num_steps))
try:
    torch_step(single_params, single_state, inputs, targets, double_masks)
    raise AssertionError("float64 masks with float32 parameters were accepted")
except ValueError as error:
    print("float64 masks with float32 parameters: ValueError:", error)


# %% [markdown]
# **float64**: the relative errors are rounding, around $10^{-16}$ to $10^{-15}$, not 0 as in
# Part I's own check: PyTorch sums its products and its backward pass in its own order (a sum of
# many terms changes in its last bits when the order changes), and its cross-entropy and sigmoid
# are its own kernels. The step is the same function.
#
# **float32**: about $10^{-8}$ to $10^{-6}$. A float32 number holds 24 bits of significand, a
# relative spacing of $2^{-23} \approx 1.2\cdot10^{-7}$ (float64: $2.2\cdot10^{-16}$): every
# operation rounds at that level, the sums over hundreds of positions and the recurrence over T
# steps accumulate it, and a gradient entry that is a difference of nearly equal terms loses
# relative precision. The comparison is against the float64 reference, so the whole difference is
# PyTorch's float32 rounding; against a float32 reference engine (printed below the table) the
# worst errors are larger, about twice, since the two engines' roundings add. Either way it is
# float32's rounding, which is why the test suite compares float32 engines with a tolerance of about
# $10^{-4}$ and float64 ones with $10^{-9}$ to $10^{-12}$ (`docs/agreement.md`). Over a whole
# training run such differences grow, and two float32 runs become two samples of the same training
# rather than the same numbers.
#
# **The update, and the whole step.** `torch_update` is Part I's `update_function` in PyTorch:
# the global norm $n = \sqrt{\sum_\theta \lVert \delta\theta \rVert^2}$ summed on the gradients'
# device, brought to Python once with `.item()`; the factor `max_grad_norm / max(n,
# max_grad_norm)` computed in Python floats; and each new parameter `p - learning_rate * scale
# * g`, made under `torch.no_grad()` (the update is no part of any gradient) as a **new** tensor,
# then made a leaf requiring a gradient with `requires_grad_()`, ready for the next step. Out of
# place, so that it changes neither argument: an in-place `p.sub_(...)` would change the
# caller's tensors, and through them the arrays they share memory with ((b)). The factors are
# Python floats, so the new parameters keep the dtype of `p` and `g` ((a)). `torch_train_step`
# is the whole step: `torch_step`, then `torch_update`.
#
# **Measuring the weights after a step.** The relative error of the weights themselves,
# $\operatorname{err}(\theta', \hat\theta')$, is a weak yardstick: the weights are of the order
# of `init_scale` (±0.1 for the tiny and small configs), a step moves them by about
# `learning_rate` × the gradient, much less, and an update computed wrong, or never applied,
# would show only as the update's size relative to the weights', and could pass. So the checks
# of this part, as those of Parts II and III, measure the weights by the **error of the
# update**: Part I's $\operatorname{err}$ applied to $\theta' - \theta$, each engine's new
# weights less its own weights before the step, $\operatorname{err}(\theta' - \theta,\
# \hat\theta' - \hat\theta) = \max|(\theta' - \theta) - (\hat\theta' - \hat\theta)| /
# \max|\hat\theta' - \hat\theta|$ (from the same float64 weights, $\theta = \hat\theta$ and
# this is the measure of Parts II and III; in float32, $\theta$ is the float32 copy). The
# gradients themselves, the most sensitive measure of all, are compared directly by (g)'s first
# check, with $\operatorname{err}$ against the reference's.
#
# **The check**: several steps of `torch_train_step` in a loop beside the reference engine's
# `train_step`, from the same weights, each carrying its state on, with the masks of every step from
# `step_masks`; after each step the relative error of the losses and of the carried state, the error
# of every parameter's update, and whether the parameters handed in are unchanged (`torch.equal`
# against a copy made before the step). Three settings: the tiny config with dropout 0.5 (its norms
# stay under `max_grad_norm` = 5: no clipping); the same with `max_grad_norm` lowered to 1, so that
# the clipping acts at every step; and the **small** config with dropout 0.5 (the norms printed
# beside `max_grad_norm` show which of its steps were clipped). The small config itself has dropout
# 0, so `step_masks` gives `None` for it (the cell prints it): masks are shown, and used, with the
# small config given the medium config's dropout, `PRESETS["small"].replace(dropout=0.5)` (Part
# I's `small_dropout`). Each in float64 and in float32 (the
# parameters, state and masks converted; the reference stays float64).


# %%
def torch_update(params, grads, learning_rate, max_grad_norm):
    """Global-norm clipping and SGD: (new params, the norm before clipping); changes neither
    argument. The new params are new leaf tensors requiring a gradient, on params' device."""
    with torch.no_grad():  # not recorded: the update is no part of any gradient
        norm = torch.sqrt(sum(g.pow(2).sum() for g in grads.values())).item()
        scale = max_grad_norm / max(norm, max_grad_norm)  # Python floats: g's dtype is kept
        new = {name: params[name] - learning_rate * scale * grads[name] for name in params}
    return {name: p.requires_grad_() for name, p in new.items()}, norm


def torch_train_step(params, state, inputs, targets, learning_rate, max_grad_norm, masks=None):
    """The whole training step, pure: (loss, new params, new state, the norm before clipping)."""
    loss, grads, new_state = torch_step(params, state, inputs, targets, masks)
    new_params, norm = torch_update(params, grads, learning_rate, max_grad_norm)
    return loss, new_params, new_state, norm


def check_torch_train_step(config, dtype, steps=3):
    """steps of torch_train_step beside the reference engine's train_step: the worst errors of
    the losses, the updates and the state, the norms, and whether params stayed."""
    engine = ReferenceEngine(config, init_params(config, corpus.vocab_size, np.float64), "float64")
    engine.reset_state(config.batch_size)
    params, state, _ = torch_tensors(engine, dtype, None)
    params = {n: p.detach().clone().requires_grad_() for n, p in params.items()}  # own memory
    errors, norms, unchanged = {"losses": 0.0, "update": 0.0, "state": 0.0}, [], True
    stream = batches(corpus.train, config.batch_size, config.num_steps)
    for step, (inputs, targets) in zip(range(steps), stream, strict=False):
        masks = step_masks(config, step, dtype=np.float64)
        tensor_masks = torch_tensors(engine, dtype, masks)[2]
        before = {n: p.detach().clone() for n, p in params.items()}
        reference_before = {n: a.copy() for n, a in engine.params.items()}
        loss, new_params, state, norm = torch_train_step(
            params, state, inputs, targets, 1.0, config.max_grad_norm, tensor_masks
        )
        unchanged &= all(torch.equal(params[n], before[n]) for n in params)
        params = new_params
        reference_loss = engine.train_step(inputs, targets, 1.0, masks)
        norms.append(norm)
        found = {
            "losses": relative_error(loss, reference_loss),
            "update": max(  # Part I's err of the updates, each engine's from its own weights
                relative_error(
                    as_array(params[n] - before[n]), engine.params[n] - reference_before[n]
                )
                for n in params
            ),
            "state": max(
                relative_error(as_array(mine), theirs)
                for pair, pairs in zip(state, engine.get_state(), strict=True)
                for mine, theirs in zip(pair, pairs, strict=True)
            ),
        }
        errors = {k: max(errors[k], found[k]) for k in errors}
    assert all(p.is_leaf and p.requires_grad for p in params.values())  # ready for a next step
    assert {p.dtype for p in params.values()} == {TORCH_DTYPES[dtype]}  # the dtype kept
    return errors, norms, unchanged


print("step_masks of the small config itself:", step_masks(PRESETS["small"], 0))
settings = {
    "tiny, dropout 0.5": PRESETS["tiny"].replace(dropout=0.5),
    "tiny, dropout 0.5, max norm 1": PRESETS["tiny"].replace(dropout=0.5, max_grad_norm=1.0),
    "small, dropout 0.5": PRESETS["small"].replace(dropout=0.5),
}
small_masks = step_masks(settings["small, dropout 0.5"], 0)
print(
    f"with dropout 0.5: {len(small_masks)} masks of shape {small_masks[0].shape}, values",
    np.unique(small_masks[0]).tolist(),
)
print(
    f"{'setting':<30} {'dtype':<8} {'losses':>8} {'update':>8} {'state':>8} "
    f"{'max norm':>8}  norms of the steps     params unchanged"
)
for label, config in settings.items():
    for dtype in ("float64", "float32"):
        errors, norms, unchanged = check_torch_train_step(config, dtype)
        print(
            f"{label:<30} {dtype:<8} {errors['losses']:>8.1e} {errors['update']:>8.1e} "
            f"{errors['state']:>8.1e} {config.max_grad_norm:>8.1f}  "
            f"{' '.join(f'{n:6.3f}' for n in norms):<22} {unchanged}"
        )
        assert unchanged
        assert max(errors.values()) <= (1e-12 if dtype == "float64" else 1e-4)


# %% [markdown]
# ## (h) The toolkit's `torch` engine
#
# `ptb_lstm/engines/torch_engine.py` is the step of (g), `torch_step` then `torch_update`, with
# four changes, each shown above: `nn.LSTM` per layer in place of `lstm_layer` (a fused kernel
# for the whole sequence, cuDNN's on a GPU; the engine's modules own their parameters, so it
# needs no `functional_call`), a sparse embedding gradient (e) with a sparse update, the
# parameters held on the engine's device, and the update made **in place** (`sub_`,
# `index_add_` under `no_grad`) on the tensors the engine owns, instead of returning new ones:
# nobody else holds them, and in place there is no copy of the weights per step. Its step factor
# is `learning_rate * max_norm / max(norm, max_norm)`, a product of Python floats in another
# order than `learning_rate * scale`: the two can differ in the last bit, inside the float64
# tolerance of 1e-12 that its checks against the reference engine use. It is an
# `Engine` like Part I's reference engine: the base class
# `ptb_lstm.engines.Engine` keeps the carried state (`state`, `reset_state`, and `_state_for`,
# which returns the carried state, or zeros when the batch has another number of rows: Part I (g)
# shows it), and the trainer calls `train_step(inputs, targets, learning_rate, masks)`.
#
# **What the engine holds**, set in its constructor (shown first):
#
# * `self.dtype`: the string `"float32"` or `"float64"` (the base class's, for every engine);
#   `TORCH_DTYPES[dtype]` is the matching `torch.float32` or `torch.float64`;
# * `self._device`: the `torch.device` that `pick_device` (d) chose; the property `device` is its
#   name, for logs;
# * `self.embedding` [V, H], `self.softmax_kernel` [H, V], `self.softmax_bias` [V]: plain tensors
#   made parameters with `requires_grad_()`; `self.layers`: one `nn.LSTM` per layer, with
#   `bias_hh_l0` switched off (c);
# * `self.trained`: the tensors SGD moves, in the canonical order, and `self.names`: their
#   canonical names (the LSTM weights are held transposed, as the table of (c) says);
# * `self.t` and `self.slots`: Adam's and AMSGrad's step count and moments (Part I (k)); empty
#   for SGD.
#
# **Arrays in and out.** `set_params` copies canonical NumPy arrays into those tensors in place,
# under `torch.no_grad()`, transposing the kernels; `get_params` returns canonical arrays,
# transposing back and adding the two biases. `_tensor` turns a NumPy array into a tensor of the
# engine's dtype on its device, `_ids` turns word ids [B, T] into int64 time-major [T, B], and
# `_array` turns a tensor into a NumPy array (`detach().cpu().numpy().copy()`: on the CPU
# `.numpy()` shares the tensor's memory, and the caller must get an array the next step leaves
# alone). The base class's `get_state` and `set_state` use `_to_numpy` and `_from_numpy`, which
# call them.
#
# **The step.** `_forward` reads `_state_for(B)`, embeds the ids with `sparse=True` for training,
# runs each `nn.LSTM` after its mask, keeps each layer's final `(h, c)` detached as the new state,
# and returns the logits [T·B, V]. `train_step` takes the loss (`_summed_nll / B`), its gradients
# with `torch.autograd.grad`, coalesces the embedding's, computes the global norm over the
# coalesced rows and the other gradients, and updates under `no_grad`: the embedding's rows with
# `index_add_`, the rest with `sub_`, each by `learning_rate * max_grad_norm / max(norm,
# max_grad_norm)` times its gradient.
#
# **The names the sources use** and this part has not met, in the order they appear:
#
# * `param_shapes(config, V)` (`ptb_lstm/params.py`): canonical name → shape, in the canonical
#   order; `self.names` is its keys;
# * `moments(config)` (`ptb_lstm/optim.py`): the names of the arrays the optimizer keeps per
#   parameter, `()` for SGD, `("m", "v")` for Adam, `("m", "v", "vmax")` for AMSGrad; so
#   `self.slots` is empty for SGD;
# * `_tensor`, `_ids`, `_array` (the engine, shown below): the conversions above;
# * `_state_for(B)` (the base class, `ptb_lstm/engines/__init__.py`): the carried state, or zeros
#   for another number of rows;
# * `torch.addmm(b, X, W)` (PyTorch): $b + XW$ in one call, the matrix product adding $b$ as it is
#   written; here the logits [T·B, V];
# * `_summed_nll(logits, targets)` (the engine, shown below): `cross_entropy(..., reduction="sum")`,
#   the NLL summed over the T·B positions, the targets made by `_ids`;
# * `self._adam(gradients, learning_rate, scale)` (the engine; not shown, as this part trains with
#   SGD): Adam's or AMSGrad's update in place, in `ptb_lstm.optim`'s order of operations (Part I
#   (k)), called instead of the SGD lines when `self.slots` is not empty;
# * `last_grad_norm`: the norm before clipping, which the trainer logs; every engine's `train_step`
#   sets it.

# %%
from ptb_lstm.engines.torch_engine import TorchEngine

show_source(TorchEngine.__init__)
show_source(TorchEngine._tensor)
show_source(TorchEngine._ids)
show_source(TorchEngine._array)
show_source(TorchEngine.set_params)
show_source(TorchEngine.get_params)
show_source(TorchEngine._forward)
show_source(TorchEngine._summed_nll)
show_source(TorchEngine.train_step)
print("TORCH_DTYPES =", TORCH_DTYPES)

# %% [markdown]
# **The engine against Part I's reference engine.** Both engines train four steps from the same
# weights on the first PTB batches, with the same masks (dropout 0.5), `max_grad_norm` lowered to
# 1 so that clipping acts, and the state carried on; then the relative error of the losses and
# of the carried state, and for every parameter the error relative to its change over the four
# steps ((g): Part I's err of $\theta_4 - \theta_0$, each engine's from its own start), float64
# and float32, each against the float64 reference.


# %%
def engines_agree(dtype, steps=4):
    config = PRESETS["tiny"].replace(dropout=0.5, max_grad_norm=1.0)
    params = init_params(config, corpus.vocab_size, np.float64)
    reference = ReferenceEngine(config, params, "float64")
    engine = TorchEngine(config, params, dtype=dtype, device="cpu")
    losses, norms = [[], []], []
    starts = engine.get_params(), reference.get_params()  # each engine's own weights
    stream = batches(corpus.train, config.batch_size, config.num_steps)
    for step, (inputs, targets) in zip(range(steps), stream, strict=False):
        masks = step_masks(config, step, dtype=np.float64)
        losses[0].append(reference.train_step(inputs, targets, 1.0, masks))
        losses[1].append(engine.train_step(inputs, targets, 1.0, masks))
        norms.append(engine.last_grad_norm)
    ours, theirs = engine.get_params(), reference.get_params()
    state = max(
        relative_error(a, b)
        for pair, pairs in zip(engine.get_state(), reference.get_state(), strict=True)
        for a, b in zip(pair, pairs, strict=True)
    )
    updates = {  # Part I's err of the weights' change over the steps
        n: relative_error(ours[n] - starts[0][n], theirs[n] - starts[1][n]) for n in ours
    }
    worst = max(updates, key=updates.get)
    return (
        relative_error(losses[1], losses[0]),
        updates[worst],
        worst,
        state,
        min(norms),
    )


print(
    f"{'dtype':<8} {'losses':>9} {'update':>9} {'worst parameter':<26} {'state':>9} {'min norm':>9}"
)
for dtype in ("float64", "float32"):
    loss, param, worst, state, norm = engines_agree(dtype)
    print(f"{dtype:<8} {loss:>9.1e} {param:>9.1e} {worst:<26} {state:>9.1e} {norm:>9.2f}")
    assert max(loss, param, state) <= (1e-12 if dtype == "float64" else 1e-4)

# %% [markdown]
# ## (i) A short run on PTB
#
# The toolkit's trainer with the `torch` engine: `STEPS` steps of the small config, then a pass
# over the valid split, on the CPU with PyTorch's default number of threads ((a)). The cell
# prints the steps and the perplexities, and no time: a time measured here would be that of
# whatever machine runs the notebook, beside whatever else runs there; `make bench` measures
# speed (`docs/bench.md` has its latest figures). No full 13-epoch run of the `torch` engine is
# recorded in `docs/results/`; the engine is held to the others by the checks above and by
# `ptb-lstm agree` (`docs/torch-engine.md`).

# %%
from ptb_lstm.engines import create_engine
from ptb_lstm.metrics import read_metrics
from ptb_lstm.train import train

config = PRESETS["small"]
engine = create_engine("torch", config, init_params(config, corpus.vocab_size), device="cpu")
out = tempfile.mkdtemp(prefix="ptb-lstm-notebook-")
result = train(config, corpus, engine, out, max_steps=STEPS, log_every=max(1, STEPS // 10))
records = [r for r in read_metrics(f"{out}/metrics.jsonl") if r["event"] == "step"]
print(
    f"{STEPS} steps of the small config with the torch engine on {engine.device} "
    f"({torch.get_num_threads()} threads): running training perplexity "
    f"{records[-1]['perplexity']:.1f} at step {records[-1]['step']}; then the valid split: "
    f"perplexity {result.valid.perplexity:.1f}"
)

# %% figure="notebook4-curve"
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot([r["step"] for r in records], [r["perplexity"] for r in records])
ax.set_xlabel("training step")
ax.set_ylabel("running training perplexity")
ax.set_yscale("log")
ax.set_title("small config, PyTorch engine, first steps")
ax.grid(True, which="both", alpha=0.3)
plt.show()

# %% [markdown]
# ## (j) Exercises
#
# As in Part I: each function below is committed as a stub that returns `None`; its check prints
# `not yet done` while it does, `pass` when the answer is right and `WRONG` with what differs
# otherwise (an answer that raises is `WRONG`, with the error). Replace `return None` by your code
# and run the stub's cell again. The solutions follow in (k), each run through the same check
# beside a wrong answer that the check refuses.
#
# 1. **From canonical parameters to `nn.LSTM`.** Write `my_lstm_weights(kernel, recurrent_kernel,
#    bias)` (NumPy arrays in the canonical layout) returning a dict from `nn.LSTM`'s names
#    `weight_ih_l0`, `weight_hh_l0`, `bias_ih_l0`, `bias_hh_l0` to tensors, such that an
#    `nn.LSTM` loaded with them (`lstm.load_state_dict(...)`) computes the canonical layer. The
#    check loads them and compares the layer's outputs with Part I's reference engine (float64).
# 2. **The global norm with a sparse embedding gradient.** Write `my_sparse_norm(gradients)`:
#    `gradients` is a list of tensors, the first the embedding's sparse gradient as
#    `embedding(..., sparse=True)` gives it (uncoalesced, a row per position), the others dense;
#    return the global norm of Part I (g) as a float. The check builds the gradients from a PTB
#    batch, where words repeat.
# 3. **An SGD step with autograd.** Write `my_sgd_step(params, inputs, targets, learning_rate,
#    max_grad_norm)`: `params` is a dict of canonical leaf tensors requiring gradients (float64,
#    one layer, no dropout, from a zero state); compute the loss with `torch_step` of (g) or
#    autograd of your own, clip by the global norm as Part I does, and update every tensor **in
#    place** (the same tensor objects, still leaves requiring gradients), returning the loss:
#    the engine's way, where `torch_update` of (g) returns new tensors. The
#    check runs three steps beside the reference engine's `train_step` (the state carried by
#    neither: each step starts from zeros) and checks the weights (relative to their change,
#    as in (g)), the loss and that the tensors
#    are the ones it handed over.


# %%
def verdict(name, attempt, judge):
    """Run attempt(): None is "not yet done"; judge(result) returns "" when it is right, else
    what is wrong. Prints the verdict; returns True, False or None (not yet done)."""
    try:
        result = attempt()
    except Exception as error:  # an answer that fails is a wrong answer, not a broken notebook
        print(f"{name}: WRONG, it raised {type(error).__name__}: {error}")
        return False
    if result is None:
        print(f"{name}: not yet done (the function returns None)")
        return None
    problem = judge(result)
    print(f"{name}: " + (f"WRONG, {problem}" if problem else "pass"))
    return not problem


def check_lstm_weights(my_lstm_weights):
    config = PRESETS["tiny"].replace(num_layers=1)
    params = init_params(config, corpus.vocab_size, np.float64)
    engine = ReferenceEngine(config, params, dtype="float64")
    inputs, _ = next(batches(corpus.train, config.batch_size, config.num_steps))
    engine.reset_state(config.batch_size)
    layer = engine.forward(inputs, engine.state).layers[0]

    def attempt():
        return my_lstm_weights(
            params["lstm_0_kernel"], params["lstm_0_recurrent_kernel"], params["lstm_0_bias"]
        )

    def judge(weights):
        lstm = torch.nn.LSTM(config.hidden_size, config.hidden_size, dtype=torch.float64)
        lstm.load_state_dict(weights)
        with torch.no_grad():
            outputs, _ = lstm(torch.from_numpy(layer.x))
        error = relative_error(outputs.numpy(), layer.h[1:])
        return "" if error <= 1e-12 else f"the outputs differ by a relative error of {error:.1e}"

    verdict("exercise 1", attempt, judge)


def check_sparse_norm(my_sparse_norm):
    config = PRESETS["small"]
    inputs, _ = next(batches(corpus.train, config.batch_size, config.num_steps))
    ids = torch.from_numpy(inputs.T.astype(np.int64))
    torch.manual_seed(2)
    E = torch.randn(corpus.vocab_size, config.hidden_size, dtype=torch.float64)
    E.requires_grad_()
    upstream = torch.randn(*ids.shape, config.hidden_size, dtype=torch.float64)
    rows = torch.nn.functional.embedding(ids, E, sparse=True)
    (sparse,) = torch.autograd.grad((rows * upstream).sum(), [E])
    others = [torch.randn(8, 4, dtype=torch.float64), torch.randn(4, dtype=torch.float64)]
    dense = np.zeros((corpus.vocab_size, config.hidden_size))
    np.add.at(dense, ids.numpy(), upstream.numpy())
    expected = np.sqrt(np.sum(dense**2) + sum(np.sum(g.numpy() ** 2) for g in others))
    print(f"{ids.numel()} positions, {ids.unique().numel()} distinct words")

    def judge(got):
        error = relative_error(float(got), expected)
        return "" if error <= 1e-12 else f"{float(got):.6f} against {expected:.6f}"

    verdict("exercise 2", lambda: my_sparse_norm([sparse, *others]), judge)


def check_sgd_step(my_sgd_step):
    config = PRESETS["tiny"].replace(num_layers=1, max_grad_norm=1.0)
    params = init_params(config, corpus.vocab_size, np.float64)
    engine = ReferenceEngine(config, params, dtype="float64")
    tensors = {n: torch.from_numpy(a.copy()).requires_grad_() for n, a in params.items()}
    start = {n: a.copy() for n, a in params.items()}  # the weights both begin from
    handed = dict(tensors)
    schedule = [1.0, 0.5, 0.25]  # learning rates

    def attempt():
        losses = []
        stream = batches(corpus.train, config.batch_size, config.num_steps)
        for learning_rate, (inputs, targets) in zip(schedule, stream, strict=False):
            loss = my_sgd_step(tensors, inputs, targets, learning_rate, config.max_grad_norm)
            if loss is None:
                return None
            engine.reset_state(config.batch_size)  # the reference from zeros too
            losses.append((loss, engine.train_step(inputs, targets, learning_rate)))
        return losses

    def judge(losses):
        if any(tensors[n] is not handed[n] for n in handed):
            return "the dict holds other tensors than it was given: update them in place"
        if not all(t.is_leaf and t.requires_grad for t in tensors.values()):
            return "a tensor is no longer a leaf requiring a gradient"
        worst_loss = max(relative_error(float(a), b) for a, b in losses)
        update = max(  # relative to the weights' change over the three steps ((g))
            relative_error(tensors[n].detach().numpy() - start[n], engine.params[n] - start[n])
            for n in tensors
        )
        if max(worst_loss, update) > 1e-12:
            return f"errors: losses {worst_loss:.1e}, weights (of the update) {update:.1e}"
        return ""

    verdict("exercise 3", attempt, judge)


# %%
def my_lstm_weights(kernel, recurrent_kernel, bias):
    return None  # your code here


check_lstm_weights(my_lstm_weights)


# %%
def my_sparse_norm(gradients):
    return None  # your code here


check_sparse_norm(my_sparse_norm)


# %%
def my_sgd_step(params, inputs, targets, learning_rate, max_grad_norm):
    return None  # your code here


check_sgd_step(my_sgd_step)

# %% [markdown]
# ## (k) Solutions to the exercises
#
# ---
#
# **Stop here until you have tried them: the answers follow.**
#
# 1. The table of (c): the kernels transposed, the canonical bias in `bias_ih_l0` and zeros in
#    `bias_hh_l0`; every tensor float64. The wrong answer puts the bias in both, so that $z$ gets
#    it twice.
# 2. Coalesce the sparse gradient, so that each word's rows are summed into one, then add the
#    squares of its values to those of the other gradients. The wrong answer squares the rows as
#    they come.
# 3. `torch_step` gives the loss and the gradients (tensors); the norm and the clipping factor
#    are `torch_update`'s, in PyTorch; the update runs under `torch.no_grad()` with `sub_`, in
#    place. The wrong answer rebinds each entry of the dict to a new tensor, `p - step * g`
#    (what `torch_update` returns, right for a pure function, wrong here), so that the model
#    someone else holds (an optimizer, a module) keeps the old tensors.


# %%
def solution_lstm_weights(kernel, recurrent_kernel, bias):
    return {
        "weight_ih_l0": torch.from_numpy(kernel.T.copy()),
        "weight_hh_l0": torch.from_numpy(recurrent_kernel.T.copy()),
        "bias_ih_l0": torch.from_numpy(bias.copy()),
        "bias_hh_l0": torch.zeros(bias.shape, dtype=torch.float64),
    }


def wrong_lstm_weights(kernel, recurrent_kernel, bias):  # the bias in both places
    return solution_lstm_weights(kernel, recurrent_kernel, bias) | {
        "bias_hh_l0": torch.from_numpy(bias.copy())
    }


def solution_sparse_norm(gradients):
    embedding, *others = gradients
    squares = embedding.coalesce().values().pow(2).sum() + sum(g.pow(2).sum() for g in others)
    return squares.sqrt().item()


def wrong_sparse_norm(gradients):  # a word used twice counted as two rows
    embedding, *others = gradients
    squares = embedding._values().pow(2).sum() + sum(g.pow(2).sum() for g in others)
    return squares.sqrt().item()


def sgd_update(params, inputs, targets, learning_rate, max_grad_norm):
    """The loss and each parameter's move, learning_rate * scale * gradient (tensors)."""
    L = sum(name.endswith("_recurrent_kernel") for name in params)
    H = params["lstm_0_recurrent_kernel"].shape[0]
    like = params["embedding"]  # zeros of the parameters' dtype, on their device
    zeros = [(like.new_zeros(inputs.shape[0], H),) * 2] * L
    loss, grads, _ = torch_step(params, zeros, inputs, targets)
    with torch.no_grad():
        norm = torch.sqrt(sum(g.pow(2).sum() for g in grads.values())).item()
        scale = max_grad_norm / max(norm, max_grad_norm)
        return loss, {n: learning_rate * scale * g for n, g in grads.items()}


def solution_sgd_step(params, inputs, targets, learning_rate, max_grad_norm):
    loss, moves = sgd_update(params, inputs, targets, learning_rate, max_grad_norm)
    with torch.no_grad():
        for name, move in moves.items():
            params[name].sub_(move)  # in place: the same leaf tensor
    return loss


def wrong_sgd_step(params, inputs, targets, learning_rate, max_grad_norm):  # new tensors
    loss, moves = sgd_update(params, inputs, targets, learning_rate, max_grad_norm)
    for name, move in moves.items():
        params[name] = (params[name] - move).detach().requires_grad_()
    return loss


print("--- the solutions")
check_lstm_weights(solution_lstm_weights)
check_sparse_norm(solution_sparse_norm)
check_sgd_step(solution_sgd_step)
print("--- the wrong answers")
check_lstm_weights(wrong_lstm_weights)
check_sparse_norm(wrong_sparse_norm)
check_sgd_step(wrong_sgd_step)

# %% [markdown]
# PyTorch computes Part I's step to rounding in float64, with autograd in place of the
# hand-written BPTT; the parameter mapping of (c), the coalesced embedding gradient of (e) and
# the written-out clipping of (f) are what make the `torch` engine compute the same function as
# the NumPy engines.
