"""`ember.utils.tensorboard`: `SummaryWriter`, with the API of `torch.utils.tensorboard.SummaryWriter`.

It writes real TensorBoard event files through the `tensorboard` package's own `EventFileWriter` and protos, with the
same event contents as PyTorch's writer (scalars, `add_scalars` runs in ``log_dir/<main_tag>_<tag>`` folders,
histograms with TensorFlow's default buckets, PNG images, text). Needs the optional extra::

    pip install 'ember[tensorboard]'

Values may be ember tensors (any device), NumPy arrays/scalars or Python numbers.
"""
from __future__ import annotations

import os
import time

__all__ = ["SummaryWriter"]

_INSTALL_HINT = ("ember.utils.tensorboard.SummaryWriter needs the 'tensorboard' package: "
                 "pip install 'ember[tensorboard]' (or pip install tensorboard)")


def _import_backend():
    """The `tensorboard` pieces the writer needs, imported on first use so that ember does not depend on them."""
    import importlib
    try:
        importlib.import_module("tensorboard")  # first: its submodules may already sit in sys.modules
        from tensorboard.compat.proto import event_pb2
        from tensorboard.summary.writer.event_file_writer import EventFileWriter
    except ImportError as e:
        raise ImportError(f"{_INSTALL_HINT} ({e})") from e
    from . import _summary
    return event_pb2, EventFileWriter, _summary


def _check_tag(tag, method: str) -> str:
    if not isinstance(tag, str):
        raise TypeError(f"{method}: got tag {tag!r} of type {type(tag).__name__}, expected a str")
    return tag


def _step(global_step, method: str):
    if global_step is None:
        return None
    if isinstance(global_step, bool):
        raise TypeError(f"{method}: got global_step={global_step!r}, expected an int")
    if hasattr(global_step, "detach") and hasattr(global_step, "cpu"):  # a one-element ember tensor
        global_step = global_step.detach().cpu().numpy().reshape(-1)
        if global_step.size != 1:
            raise ValueError(f"{method}: got a global_step tensor of {global_step.size} elements, expected an int")
        global_step = global_step[0]
    try:
        return int(global_step)
    except (TypeError, ValueError):
        raise TypeError(f"{method}: got global_step={global_step!r}, expected an int") from None


class _FileWriter:
    """One event file in one folder (torch's `FileWriter`): stamps events with wall time and step."""

    def __init__(self, backend, log_dir, max_queue, flush_secs, filename_suffix):
        self._event_pb2 = backend[0]
        self.event_writer = backend[1](str(log_dir), max_queue, flush_secs, filename_suffix)

    def get_logdir(self):
        return self.event_writer.get_logdir()

    def add_event(self, event, step=None, walltime=None):
        event.wall_time = time.time() if walltime is None else float(walltime)
        if step is not None:
            event.step = int(step)
        self.event_writer.add_event(event)

    def add_summary(self, summary, global_step=None, walltime=None):
        self.add_event(self._event_pb2.Event(summary=summary), global_step, walltime)

    def flush(self):
        self.event_writer.flush()

    def close(self):
        self.event_writer.close()


class SummaryWriter:
    """Writes entries to event files in `log_dir` for TensorBoard, like `torch.utils.tensorboard.SummaryWriter`.

    Args:
        log_dir: folder for the event files; default ``runs/<Mon DD_HH-MM-SS>_<hostname><comment>``.
        comment: suffix of the default `log_dir` (ignored when `log_dir` is given).
        purge_step: when resuming a crashed run at step T, hide the earlier run's events at steps >= T.
        max_queue: pending events before an ``add_*`` call forces a write to disk.
        flush_secs: how often, in seconds, pending events are flushed.
        filename_suffix: suffix of the event file names.
    """

    def __init__(self, log_dir=None, comment="", purge_step=None, max_queue=10, flush_secs=120, filename_suffix=""):
        self._backend = _import_backend()
        if not log_dir:
            import socket
            from datetime import datetime
            current_time = datetime.now().strftime("%b%d_%H-%M-%S")
            log_dir = os.path.join("runs", current_time + "_" + socket.gethostname() + comment)
        self.log_dir = log_dir
        self.purge_step = purge_step
        self.max_queue = max_queue
        self.flush_secs = flush_secs
        self.filename_suffix = filename_suffix
        self.file_writer = self.all_writers = None
        self._get_file_writer()
        self.default_bins = self._backend[2].default_bins()

    def _get_file_writer(self):
        """The main folder's writer; (re)created after `close()` so that the writer can be used again."""
        if self.all_writers is None or self.file_writer is None:
            self.file_writer = _FileWriter(self._backend, self.log_dir, self.max_queue, self.flush_secs,
                                           self.filename_suffix)
            self.all_writers = {self.file_writer.get_logdir(): self.file_writer}
            if self.purge_step is not None:
                event_pb2 = self._backend[0]
                step = int(self.purge_step)
                self.file_writer.add_event(event_pb2.Event(step=step, file_version="brain.Event:2"))
                self.file_writer.add_event(event_pb2.Event(
                    step=step, session_log=event_pb2.SessionLog(status=event_pb2.SessionLog.START)))
                self.purge_step = None
        return self.file_writer

    def get_logdir(self):
        """The folder the event files are written to."""
        return self.log_dir

    # ---- summaries ----------------------------------------------------------------------------------------------
    def add_scalar(self, tag, scalar_value, global_step=None, walltime=None, new_style=False,
                   double_precision=False):
        """Log one number (Python/NumPy number or one-element tensor) under `tag` at `global_step`."""
        tag = _check_tag(tag, "add_scalar")
        summary = self._backend[2].scalar(tag, scalar_value, new_style=new_style, double_precision=double_precision)
        self._get_file_writer().add_summary(summary, _step(global_step, "add_scalar"), walltime)

    def add_scalars(self, main_tag, tag_scalar_dict, global_step=None, walltime=None):
        """Log several numbers in one chart: each key goes to its own run, ``log_dir/<main_tag>_<key>``."""
        main_tag = _check_tag(main_tag, "add_scalars")
        if not isinstance(tag_scalar_dict, dict):
            raise TypeError(f"add_scalars({main_tag!r}): got tag_scalar_dict of type "
                            f"{type(tag_scalar_dict).__name__}, expected a dict of tag -> scalar")
        step = _step(global_step, "add_scalars")
        summaries = {_check_tag(tag, "add_scalars"): self._backend[2].scalar(main_tag, value)
                     for tag, value in tag_scalar_dict.items()}  # all checked before anything is written
        walltime = time.time() if walltime is None else walltime
        fw_logdir = self._get_file_writer().get_logdir()
        for tag, summary in summaries.items():
            fw_tag = fw_logdir + "/" + main_tag.replace("/", "_") + "_" + tag
            fw = self.all_writers.get(fw_tag)
            if fw is None:
                fw = _FileWriter(self._backend, fw_tag, self.max_queue, self.flush_secs, self.filename_suffix)
                self.all_writers[fw_tag] = fw
            fw.add_summary(summary, step, walltime)

    def add_histogram(self, tag, values, global_step=None, bins="tensorflow", walltime=None, max_bins=None):
        """Log a histogram of `values` (any shape); `bins` is 'tensorflow' or anything `numpy.histogram` takes."""
        tag = _check_tag(tag, "add_histogram")
        if isinstance(bins, str) and bins == "tensorflow":
            bins = self.default_bins
        summary = self._backend[2].histogram(tag, values, bins, max_bins=max_bins)
        self._get_file_writer().add_summary(summary, _step(global_step, "add_histogram"), walltime)

    def add_image(self, tag, img_tensor, global_step=None, walltime=None, dataformats="CHW"):
        """Log an image as PNG. Floats are taken to be in [0, 1] and scaled to [0, 255]; uint8 is kept as is.

        `dataformats` names the axes: 'CHW' (default), 'HWC', 'HW', ... ('NCHW' tiles a batch into a grid)."""
        tag = _check_tag(tag, "add_image")
        summary = self._backend[2].image(tag, img_tensor, dataformats=dataformats)
        self._get_file_writer().add_summary(summary, _step(global_step, "add_image"), walltime)

    def add_text(self, tag, text_string, global_step=None, walltime=None):
        """Log a string (Markdown) for TensorBoard's text tab; stored under ``<tag>/text_summary``."""
        tag = _check_tag(tag, "add_text")
        summary = self._backend[2].text(tag, text_string)
        self._get_file_writer().add_summary(summary, _step(global_step, "add_text"), walltime)

    def add_graph(self, model, input_to_model=None, verbose=False, use_strict_trace=True):
        """Not supported: PyTorch builds the graph with its JIT tracer, and ember has no tracer."""
        raise NotImplementedError(
            "SummaryWriter.add_graph is not supported by ember: torch.utils.tensorboard builds the graph by tracing "
            "the model with torch.jit.trace, and ember has no tracer to build a graph from. Log scalars, "
            "histograms, images and text instead.")

    # ---- lifetime -----------------------------------------------------------------------------------------------
    def flush(self):
        """Write all pending events of every event file to disk."""
        if self.all_writers is None:
            return
        for writer in self.all_writers.values():
            writer.flush()

    def close(self):
        """Flush and close every event file (a later ``add_*`` call opens a new one in the same folder)."""
        if self.all_writers is None:
            return
        for writer in self.all_writers.values():
            writer.flush()
            writer.close()
        self.file_writer = self.all_writers = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_val, exc_tb):
        self.close()
