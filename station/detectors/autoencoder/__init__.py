"""The SSIM autoencoder detector (Bergmann et al. 2019): see :mod:`.detector`.

Modules: ``network`` (the autoencoder), ``ssim`` (SSIM maps and loss), ``augment`` (training
samples), ``schedules`` (full / cpu), ``training`` (the loop), ``tiling`` (texture patches),
``onnx_io`` (export and ONNX Runtime), ``detector`` (the ``Detector`` protocol).
"""

from station.detectors.autoencoder.detector import SSIMAutoencoder

__all__ = ["SSIMAutoencoder"]
