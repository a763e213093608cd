"""TensorBoard scalars for ``train --tensorboard DIR``, written with ``tf.summary``.

TensorFlow is imported here only when this reporter is created, so the core stays NumPy-only.
"""

from __future__ import annotations

from pathlib import Path

from ptb_lstm.errors import UserError
from ptb_lstm.metrics import Reporter

# metrics.jsonl field -> TensorBoard tag
STEP_SCALARS = {
    "loss": "train/loss",
    "perplexity": "train/perplexity",
    "lr": "train/learning_rate",
    "grad_norm": "train/gradient_norm",
    "words_per_second": "train/words_per_second",
}
EPOCH_SCALARS = {
    "train_perplexity": "epoch/train_perplexity",
    "valid_perplexity": "epoch/valid_perplexity",
    "lr": "epoch/learning_rate",
    "ms_per_step": "epoch/ms_per_step",
}
TEST_SCALARS = {"test_perplexity": "test/perplexity"}


class TensorBoardReporter(Reporter):
    """Writes each record that metrics.jsonl keeps as scalars, against the global training
    step."""

    def __init__(self, log_dir: str | Path) -> None:
        from ptb_lstm.engines import quiet_native_stderr

        try:
            import tensorboard  # noqa: F401 (tf.summary writes nothing without it)

            with quiet_native_stderr():  # TensorFlow probes for CUDA as it starts
                import tensorflow as tf

                self.writer = tf.summary.create_file_writer(str(log_dir))
                tf.config.list_logical_devices()
        except ImportError:
            from ptb_lstm.engines import install_command

            raise UserError(
                "--tensorboard needs TensorFlow and TensorBoard, which are not "
                f"installed; install them with: {install_command('tf')}"
            ) from None
        self.tf = tf

    def record(self, record: dict) -> None:
        match record["event"]:
            case "step":
                scalars = STEP_SCALARS
            case "epoch" | "partial_epoch":
                scalars = EPOCH_SCALARS
            case "test":
                scalars = TEST_SCALARS
            case _:  # progress shown on the way, not a metric
                return
        with self.writer.as_default():
            for field, tag in scalars.items():
                if record.get(field) is not None:
                    self.tf.summary.scalar(tag, float(record[field]), step=int(record["step"]))
        self.writer.flush()
