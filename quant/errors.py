"""The error hierarchy. Every error a user can cause is one of these; the CLI
prints its message on one line and exits 2."""


class HwsimError(Exception):
    """Base class: a problem with the user's input, reported in one line."""


class ModelFormatError(HwsimError):
    """The file is missing, not ONNX, truncated or fails onnx.checker."""


class UnsupportedOpError(HwsimError):
    """The model uses ops (or attributes) that hwsim cannot map."""


class ShapeError(HwsimError):
    """A dynamic or inconsistent shape, or an output size that does not fit."""


class IRError(HwsimError):
    """The IR violates an invariant (raised by the verifier, names the node)."""


class ConfigError(HwsimError):
    """A configuration value or command-line option is invalid."""


class DataError(HwsimError):
    """A dataset or calibration array is missing or has the wrong shape."""


class OverflowDetected(HwsimError):
    """An integer accumulator left its configured range."""
