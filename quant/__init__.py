"""quant: ONNX -> IR, calibration, fixed-point arithmetic, the integer-only
executor and QDQ export. Knows nothing of hardware."""

from quant.errors import (
                          ConfigError,
                          DataError,
                          HwsimError,
                          IRError,
                          ModelFormatError,
                          OverflowDetected,
                          ShapeError,
                          UnsupportedOpError,
)

__all__ = ["ConfigError", "DataError", "HwsimError", "IRError", "ModelFormatError",
           "OverflowDetected", "ShapeError", "UnsupportedOpError"]
