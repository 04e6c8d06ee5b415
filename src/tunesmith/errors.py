"""User-facing errors: the CLI prints these as one paragraph, without a traceback, and exits non-zero."""

from __future__ import annotations


class TunesmithError(Exception):
    """An error the user can fix: bad config, missing file, unknown model, unreadable data."""

    exit_code = 2


class ConfigError(TunesmithError):
    """The run config is invalid (unknown key, wrong type, out-of-range value)."""


class DataError(TunesmithError):
    """Input data cannot be read or has no usable rows; names the file, line and field."""


class ModelError(TunesmithError):
    """A model cannot be found or loaded; names the offline alternatives."""


class RunDirError(TunesmithError):
    """The run directory exists and neither --resume nor --overwrite was given, or it is incomplete."""


class TrainingError(TunesmithError):
    """Training cannot go on (non-finite loss, nothing to train on); names the step and last good checkpoint."""


class ExportError(TunesmithError):
    """A tuned model cannot be exported in the asked format (unsupported architecture, method or file)."""


class ServeError(TunesmithError):
    """The server cannot start: an adapter that does not fit its base, a bad key file, a model it cannot serve."""
