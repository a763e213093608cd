"""ptb-lstm: the LSTM language model of Zaremba et al. (2015) on the Penn Treebank.

Three engines compute the same function on the same parameters: a from-scratch NumPy
engine (``numpy``), TensorFlow eager execution (``tf-eager``) and a TensorFlow v1 graph run
in a session (``tf-graph``). The core package imports NumPy only.
"""

__version__ = "0.1.0"
