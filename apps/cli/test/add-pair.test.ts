// `timeslide model-repo add-pair` as a user runs it: their encoder(s) and
// head (graphs built here, with an exporter's tensor names), a whole-model
// stream declared next to them; list and check show the pair; bad flags and
// bad pairs exit 1 naming the flag, or the file, tensor and shape.
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { GraphBuilder, float } from "@timeslide/model-repo";

const CLI = fileURLToPath(new URL("../dist/main.js", import.meta.url));
const GEOMETRY = ["--kernel-length", "0.25", "--sample-rate", "128", "--inference-sampling-rate", "16", "--batch-size", "8"];
const K = 32;

function cli(args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", env: { ...process.env, LOG_LEVEL: "warn" } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function encoder(D: number): Uint8Array {
  const g = new GraphBuilder("enc");
  const x = g.input("input.1", "float32", ["batch_size", 1, K]);
  const y = g.node("Relu", [g.node("Conv", [x, g.constant(new Float32Array(D * 3).fill(0.1), [D, 1, 3], "float32")], { kernel_shape: [3] })]);
  g.output(g.node("ReduceMean", [y], { axes: [2], keepdims: 0 }), "onnx::Gemm_17", "float32", ["batch_size", D]);
  return g.toBytes();
}
function head(nIfo: number, D: number): Uint8Array {
  const g = new GraphBuilder("head");
  const e = g.input("x", "float32", ["batch_size", nIfo, D]);
  const f = g.node("Flatten", [e], { axis: 1 });
  g.output(g.node("Gemm", [f, g.constant(new Float32Array(nIfo * D).fill(1), [nIfo * D, 1], "float32")], { alpha: float(1), beta: float(1) }), "logit", "float32", ["batch_size", 1]);
  return g.toBytes();
}
function whole(nIfo: number): Uint8Array {
  const g = new GraphBuilder("whole");
  const x = g.input("strain", "float32", ["batch_size", nIfo, K]);
  g.output(g.node("ReduceMax", [x], { axes: [1, 2], keepdims: 0 }), "score", "float32", ["batch_size"]);
  return g.toBytes();
}

describe("timeslide model-repo add-pair", () => {
  it("serves a user's pair with a declared whole model; list and check show it; bad flags and pairs exit 1 with the reason", () => {
    const dir = mkdtempSync(join(tmpdir(), "add-pair-"));
    const f = (name: string, bytes: Uint8Array) => {
      writeFileSync(join(dir, name), bytes);
      return join(dir, name);
    };
    const enc = f("enc.onnx", encoder(2));
    const hd = f("head.onnx", head(2, 2));
    const repo = join(dir, "models");
    expect(cli(["model-repo", "init", repo]).code).toBe(0);
    expect(cli(["model-repo", "add", repo, "mynet", f("whole.onnx", whole(2))]).code).toBe(0);
    expect(cli(["model-repo", "stream", repo, "mynet-stream", "--model", "mynet", ...GEOMETRY]).code).toBe(0);

    const r = cli(["model-repo", "add-pair", repo, "mynet", "--encoder", enc, "--head", hd, "--ifos", "H1,L1", "--whole", "mynet-stream", ...GEOMETRY]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/wrote factorized pair mynet-slides \(D = 2, 2 detectors\)/);
    expect(r.stdout).toMatch(/H1: mynet-encoder-stream = mynet-encoder-stream-snapshotter -> mynet-encoder/);
    expect(r.stdout).toMatch(/model: \{ name: mynet-slides, factorized: true \}/);
    const list = cli(["model-repo", "list", repo]);
    expect(list.stdout).toMatch(/factorized pair: 2 detectors, D = 2; encoders mynet-encoder-stream \(all detectors\); head mynet-head; whole model mynet-stream/);
    const check = cli(["model-repo", "check", repo]);
    expect(check.stdout).toMatch(/all load/);
    expect(check.code).toBe(0);

    // flags
    const bad = (args: string[]) => {
      const b = cli(["model-repo", "add-pair", repo, "other", ...args, ...GEOMETRY]);
      expect(b.code).toBe(1);
      return b.stderr;
    };
    expect(bad(["--encoder", `H1=${enc}`, "--head", hd, "--ifos", "H1,L1"])).toMatch(/--encoder: no encoder for L1 \(--ifos H1,L1\); add --encoder L1=FILE/);
    expect(bad(["--encoder", enc, "--ifos", "H1,L1"])).toMatch(/--head: the head ONNX file is required/);
    expect(bad(["--encoder", enc, "--encoder", enc, "--head", hd, "--ifos", "H1,L1"])).toMatch(/2 files without detectors/);
    expect(bad(["--encoder", `H1=${enc}`, "--encoder", `L1=${join(dir, "nope.onnx")}`, "--head", hd, "--ifos", "H1,L1"])).toMatch(/nope.onnx: no such file/);
    // pairs that do not fit
    expect(bad(["--encoder", enc, "--head", f("head3.onnx", head(3, 2)), "--ifos", "H1,L1"])).toMatch(/input 'x' has shape \[\?, 3, 2\]; the encoders give \[batch, 2, 2\]/);
    expect(bad(["--encoder", `H1=${enc}`, "--encoder", `L1=${f("enc3.onnx", encoder(3))}`, "--head", hd, "--ifos", "H1,L1"])).toMatch(
      /the encoders disagree on D: .*enc.onnx \(H1\) output 'onnx::Gemm_17' \[batch, 2\] but .*enc3.onnx \(L1\) output 'onnx::Gemm_17' \[batch, 3\]/,
    );
    // a whole model over another detector count: the check names it
    expect(cli(["model-repo", "add", repo, "whole3", f("whole3.onnx", whole(3))]).code).toBe(0);
    expect(cli(["model-repo", "stream", repo, "whole3-stream", "--model", "whole3", ...GEOMETRY]).code).toBe(0);
    expect(bad(["--encoder", enc, "--head", hd, "--ifos", "H1,L1", "--whole", "whole3-stream"])).toMatch(/whole model 'whole3-stream' input 'update' \[1, 3, 64\]; expected the streaming update \[1, 2, 64\]/);
    expect(bad(["--encoder", enc, "--head", hd, "--ifos", "H1,L1", "--whole", "nope-stream"])).toMatch(/whole model 'nope-stream': .*model-repo add, model-repo stream/);
    // refused pairs wrote nothing
    expect(cli(["model-repo", "list", repo]).stdout).not.toMatch(/other-/);
  }, 240_000); // some 17 CLI runs, ~1-3 s each on a busy 2-core machine
});
