"""Pure signal processing: numpy, pyfftw and onnxruntime only; no asyncio, no project imports.

Array layout, project-wide
--------------------------
* Audio is ``float32``, time-major. Mono signals have shape ``(n_samples,)``; interleaved
  multichannel blocks are ``(n_samples, n_channels)``. Full scale is ``[-1.0, 1.0]``.
* Spectra and any per-frame matrix are ``(n_frames, n_bins)``: frames (time) first.
* Per-frame scalars are ``(n_frames,)``.
* Times are seconds (``*_s``) as ``float``; sample positions are ``int`` counts from the
  first sample of the stream (``*_samples``).
"""
