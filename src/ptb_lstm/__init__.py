"""ptb-lstm: the LSTM language model of Zaremba et al. (2015) on the Penn Treebank.

Five engines compute the same function on the same parameters (``ptb_lstm.engines``): a
from-scratch NumPy engine (``numpy``), the same model written one time step at a time to be
read (``numpy-reference``), TensorFlow eager execution (``tf-eager``), a TensorFlow v1 graph
run in a session (``tf-graph``) and PyTorch (``torch``). The core package imports NumPy only.
"""

__version__ = "0.1.0"
