#!/usr/bin/env python3
"""Export a PyTorch detection model for timeslide, and whiten training data
the way timeslide whitens the strain it feeds the model.

    pip install torch numpy scipy onnx      # not dependencies of timeslide
    python examples/export_pytorch.py --out mynet.onnx --ifos 2 --kernel-length 1.5 --sample-rate 2048
    timeslide model-repo add models mynet mynet.onnx
    timeslide model-repo stream models mynet-stream --model mynet \
        --kernel-length 1.5 --sample-rate 2048 --inference-sampling-rate 4 --batch-size 128
    timeslide model-repo check models

What the model sees (README, "Bring your own model"): float32 windows
[batch, n_ifo, kernel] of whitened strain, detectors in the campaign's
`ifos` order (the first is the reference), kernel = kernel_length x
sample_rate samples, one window every 1 / inference_sampling_rate s. It
returns one number per window ([batch] or [batch, 1]): the detection
statistic, larger = more signal-like. Tensor names are free.
"""
import argparse

import numpy as np
from scipy import signal


def whiten(x, sample_rate, psd_length=64.0, fduration=1.0, highpass=32.0, fftlength=None):
    """timeslide's whitening (packages/strain, whiten.ts) in numpy/scipy.

    PSD: Welch over the first `psd_length` s, Hann (periodic) segments of
    `fftlength` s with 50 % overlap, mean removed per segment, median
    average with scipy's bias correction. `fftlength` defaults as the
    campaign's `inference.fftlength` does: 4 s, halved while the burn-in
    holds fewer than four segments, never below `fduration`. Filter: a PSD
    finer than the filter first averaged in power over the truncation
    window's main lobe (a Hann kernel reaching 2 x fftlength / fduration bins
    either side, mirrored at DC, clamped at Nyquist), so narrow lines stay
    whitened; the inverse ASD at the PSD's resolution, zero below `highpass`
    and at DC and Nyquist, its zero-phase impulse response truncated to the central
    fduration x sample_rate taps with a Hann window, scaled so white noise
    over the full band comes out with unit variance. Applied as a centred
    FIR; the first and last fduration / 2 s are not valid (timeslide never
    feeds them).
    """
    if fftlength is None:
        fftlength = 4.0
        while fftlength > fduration and 4 * fftlength > psd_length:
            fftlength /= 2
        fftlength = max(fftlength, fduration)
    n = int(round(fduration * sample_rate))  # filter taps, a power of two
    m = int(round(fftlength * sample_rate))  # Welch segment, a power of two
    head = x[: int(round(psd_length * sample_rate))]
    f_psd, psd = signal.welch(head, fs=sample_rate, window="hann", nperseg=m, noverlap=m // 2,
                              detrend="constant", average="median", scaling="density")
    if m > n:  # power averaged over what the filter resolves, inverse ASD at the PSD's resolution
        lobe = int(round(2 * m / n))
        j = np.arange(-lobe, lobe + 1)
        w = 0.5 + 0.5 * np.cos(np.pi * j / (lobe + 1))
        idx = np.minimum(np.abs(np.arange(len(psd))[:, None] + j[None, :]), len(psd) - 1)
        f, p, size = f_psd, (psd[idx] * w).sum(axis=1) / w.sum(), m
    else:  # PSD interpolated onto the filter's frequencies
        size = n
        f = np.arange(n // 2 + 1) * sample_rate / n
        p = np.interp(f, f_psd, psd)
    k = np.arange(size // 2 + 1)
    inv = np.zeros(size // 2 + 1)
    band = (k > 0) & (k < size // 2) & (f >= highpass) & (p > 0)
    inv[band] = 1 / np.sqrt(p[band])
    imp = np.fft.irfft(inv, size)  # lag 0 at index 0
    taps = imp[(np.arange(n) - n // 2) % size] * signal.get_window("hann", n) * np.sqrt(2 / sample_rate)
    y = signal.fftconvolve(x, taps)[n // 2 : n // 2 + len(x)]
    return y[n // 2 : len(x) - n // 2]  # the valid part


def build_model(n_ifo, kernel):
    import torch

    class Net(torch.nn.Module):
        """A small 1-D CNN: [batch, n_ifo, kernel] -> [batch, 1]. Train it on whitened windows."""

        def __init__(self):
            super().__init__()
            self.features = torch.nn.Sequential(
                torch.nn.Conv1d(n_ifo, 16, 16), torch.nn.ReLU(), torch.nn.MaxPool1d(4),
                torch.nn.Conv1d(16, 32, 8), torch.nn.ReLU(), torch.nn.AdaptiveMaxPool1d(1),
            )
            self.head = torch.nn.Linear(32, 1)

        def forward(self, strain):
            return self.head(self.features(strain).flatten(1))

    return Net()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="mynet.onnx")
    p.add_argument("--ifos", type=int, default=2)
    p.add_argument("--kernel-length", type=float, default=1.5)
    p.add_argument("--sample-rate", type=int, default=2048)
    p.add_argument("--weights", help="a state_dict saved with torch.save (default: untrained)")
    a = p.parse_args()

    import torch

    kernel = int(round(a.kernel_length * a.sample_rate))
    model = build_model(a.ifos, kernel).eval().float()  # float32: timeslide sends FP32
    if a.weights:
        model.load_state_dict(torch.load(a.weights, map_location="cpu"))
    example = torch.randn(8, a.ifos, kernel, dtype=torch.float32)
    torch.onnx.export(
        model, (example,), a.out,
        input_names=["strain"], output_names=["logits"],          # any names: `model-repo add` reads them
        dynamic_axes={"strain": {0: "batch"}, "logits": {0: "batch"}},  # a dynamic batch axis -> max_batch_size
        opset_version=17,
    )
    print(f"wrote {a.out}: strain [batch, {a.ifos}, {kernel}] float32 -> logits [batch, 1]")


if __name__ == "__main__":
    main()
