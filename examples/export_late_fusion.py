#!/usr/bin/env python3
"""Export a learned late-fusion detector for timeslide as a factorized pair:
a small CNN encoder per detector and an MLP head that fuses the detectors'
embeddings (README, "Factorized models"; DESIGN.md, "Factorized models").

    pip install torch onnx                   # not dependencies of timeslide
    python examples/export_late_fusion.py --out-dir mynet --ifos H1,L1 \
        --kernel-length 1 --sample-rate 2048 [--per-detector] [--weights state.pt]
    timeslide model-repo init models
    timeslide model-repo add models mynet mynet/whole.onnx          # the equivalent whole model
    timeslide model-repo stream models mynet-stream --model mynet \
        --kernel-length 1 --sample-rate 2048 --inference-sampling-rate 16 --batch-size 128
    timeslide model-repo add-pair models mynet --encoder mynet/encoder.onnx --head mynet/head.onnx \
        --ifos H1,L1 --whole mynet-stream \
        --kernel-length 1 --sample-rate 2048 --inference-sampling-rate 16 --batch-size 128
    timeslide model-repo check models

(with --per-detector: --encoder H1=mynet/encoder_H1.onnx --encoder L1=mynet/encoder_L1.onnx),
then in the campaign: model: { name: mynet-slides, factorized: true }.

The contract (what the pair must be for a time slide to cost the head alone):
  encoder  [batch, 1, kernel] float32 whitened strain of ONE detector -> [batch, D]
  head     [batch, n_ifo, D]  embeddings, detectors in the campaign's order -> [batch, 1]
  whole    [batch, n_ifo, kernel] -> [batch, 1] = head(stack_i encoder_i(x_i))
Nothing may mix the detectors before the head: each detector's embeddings
are computed once per job and re-paired for every shift. Whiten training
data as timeslide does (`whiten` in examples/export_pytorch.py). Tensor
names are free; `add-pair` reads them from the graphs.
"""
import argparse
import os


def build(n_ifo, kernel, dim, per_detector):
    import torch

    class Encoder(torch.nn.Module):
        """One detector's windows [batch, 1, kernel] -> embedding [batch, dim]."""

        def __init__(self):
            super().__init__()
            self.features = torch.nn.Sequential(
                torch.nn.Conv1d(1, 16, 16), torch.nn.ReLU(), torch.nn.MaxPool1d(4),
                torch.nn.Conv1d(16, 32, 8), torch.nn.ReLU(), torch.nn.AdaptiveMaxPool1d(1),
            )
            self.project = torch.nn.Linear(32, dim)

        def forward(self, strain):
            return self.project(self.features(strain).flatten(1))

    class Head(torch.nn.Module):
        """Embeddings [batch, n_ifo, dim] -> statistic [batch, 1]."""

        def __init__(self):
            super().__init__()
            self.mlp = torch.nn.Sequential(torch.nn.Flatten(1), torch.nn.Linear(n_ifo * dim, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1))

        def forward(self, embedding):
            return self.mlp(embedding)

    class LateFusion(torch.nn.Module):
        """The whole model: [batch, n_ifo, kernel] -> [batch, 1] = head(stack_i encoder_i(x_i))."""

        def __init__(self):
            super().__init__()
            self.encoders = torch.nn.ModuleList([Encoder() for _ in range(n_ifo if per_detector else 1)])
            self.head = Head()

        def encoder(self, i):
            return self.encoders[i if per_detector else 0]

        def forward(self, strain):
            emb = [self.encoder(i)(strain[:, i : i + 1, :]) for i in range(n_ifo)]
            return self.head(torch.stack(emb, dim=1))

    return LateFusion()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out-dir", default="mynet")
    p.add_argument("--ifos", default="H1,L1", help="detectors in the campaign's order")
    p.add_argument("--kernel-length", type=float, default=1.0)
    p.add_argument("--sample-rate", type=int, default=2048)
    p.add_argument("--dim", type=int, default=8, help="D, floats per embedding")
    p.add_argument("--per-detector", action="store_true", help="one encoder per detector (default: one shared)")
    p.add_argument("--weights", help="a LateFusion state_dict saved with torch.save (default: untrained)")
    a = p.parse_args()

    import torch

    ifos = a.ifos.split(",")
    kernel = int(round(a.kernel_length * a.sample_rate))
    model = build(len(ifos), kernel, a.dim, a.per_detector).eval().float()  # float32: timeslide sends FP32
    if a.weights:
        model.load_state_dict(torch.load(a.weights, map_location="cpu"))
    os.makedirs(a.out_dir, exist_ok=True)

    def export(module, example, path, inp, out):
        torch.onnx.export(
            module, (example,), path, input_names=[inp], output_names=[out],
            dynamic_axes={inp: {0: "batch"}, out: {0: "batch"}},  # a dynamic batch axis -> max_batch_size
            opset_version=17,
        )
        print(f"wrote {path}")

    x = torch.randn(8, len(ifos), kernel, dtype=torch.float32)
    with torch.no_grad():
        emb = torch.stack([model.encoder(i)(x[:, i : i + 1, :]) for i in range(len(ifos))], dim=1)
        # the pair computes the whole model exactly: the head of the stacked embeddings
        assert torch.allclose(model.head(emb), model(x), atol=1e-6)
    if a.per_detector:
        for i, ifo in enumerate(ifos):
            export(model.encoder(i), x[:, i : i + 1, :], os.path.join(a.out_dir, f"encoder_{ifo}.onnx"), "strain", "embedding")
    else:
        export(model.encoder(0), x[:, :1, :], os.path.join(a.out_dir, "encoder.onnx"), "strain", "embedding")
    export(model.head, emb, os.path.join(a.out_dir, "head.onnx"), "embedding", "logits")
    export(model, x, os.path.join(a.out_dir, "whole.onnx"), "strain", "logits")
    encoders = (
        " ".join(f"--encoder {ifo}={os.path.join(a.out_dir, f'encoder_{ifo}.onnx')}" for ifo in ifos)
        if a.per_detector
        else f"--encoder {os.path.join(a.out_dir, 'encoder.onnx')}"
    )
    print(
        f"encoder [batch, 1, {kernel}] -> [batch, {a.dim}]; head [batch, {len(ifos)}, {a.dim}] -> [batch, 1]\n"
        f"next: timeslide model-repo add-pair models NAME {encoders} --head {os.path.join(a.out_dir, 'head.onnx')} --ifos {a.ifos} "
        f"--kernel-length {a.kernel_length} --sample-rate {a.sample_rate} --inference-sampling-rate HZ --batch-size N"
    )


if __name__ == "__main__":
    main()
