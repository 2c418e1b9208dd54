import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import { z } from "zod";
import {
  DEFAULT_STREAMS,
  addFactorized,
  addModel,
  addStreaming,
  checkRepository,
  demoBankOptions,
  formatListing,
  initRepository,
  listRepository,
  writeDemoRepository,
} from "@timeslide/model-repo";
import { run } from "../errors.js";

// Flags arrive as strings from commander; each is checked here so an error
// names the flag and what was expected.
const num = (flag: string) =>
  z
    .string()
    .trim()
    .regex(/^\d+(\.\d+)?$/, `${flag}: expected a positive number`)
    .transform(Number)
    .pipe(z.number().positive(`${flag}: expected > 0`).finite());
const int = (flag: string, min: number, max = Number.MAX_SAFE_INTEGER) =>
  z
    .string()
    .trim()
    .regex(/^\d+$/, `${flag}: expected a whole number`)
    .transform(Number)
    .pipe(z.number().int().min(min, `${flag}: expected >= ${min}`).max(max, `${flag}: expected <= ${max}`));

// Tolerance for "a whole number of samples" with decimal flags (1.5 s · 2048 Hz).
const EPS = 1e-9;
const isWhole = (x: number) => Math.abs(x - Math.round(x)) < EPS * Math.max(1, Math.abs(x));

/** Kernel and stride in whole samples, the stride within the kernel: the streaming geometry every command here takes. */
function checkGeometry(o: { kernelLength: number; sampleRate: number; inferenceSamplingRate: number }, ctx: z.RefinementCtx): void {
  const kernel = o.kernelLength * o.sampleRate;
  if (!isWhole(kernel)) ctx.addIssue({ code: "custom", path: ["kernelLength"], message: `--kernel-length: ${o.kernelLength} s at ${o.sampleRate} Hz is ${kernel} samples; expected a whole number` });
  const stride = o.sampleRate / o.inferenceSamplingRate;
  if (!isWhole(stride))
    ctx.addIssue({ code: "custom", path: ["inferenceSamplingRate"], message: `--inference-sampling-rate: ${o.inferenceSamplingRate} Hz must divide --sample-rate ${o.sampleRate} Hz (stride ${stride} samples is not whole)` });
  else if (Math.round(stride) > Math.round(kernel))
    ctx.addIssue({ code: "custom", path: ["inferenceSamplingRate"], message: `--inference-sampling-rate: stride ${stride} samples exceeds the kernel (${kernel} samples): windows would skip data` });
}

const Flags = z
  .object({
    out: z.string({ error: "--out: a directory is required (--out DIR)" }).trim().min(1, "--out: expected a directory"),
    ifos: int("--ifos", 2, 4),
    kernelLength: num("--kernel-length"),
    sampleRate: int("--sample-rate", 1),
    inferenceSamplingRate: num("--inference-sampling-rate"),
    batchSize: int("--batch-size", 1),
    maxBatchSize: int("--max-batch-size", 1).optional(),
    dynamicBatching: z.boolean(),
    device: z.enum(["cpu", "gpu"], { error: "--device: expected cpu or gpu" }),
    instances: int("--instances", 1, 64),
    streams: int("--streams", 1, 1024),
    tensorrt: z.boolean(),
    bank: z.enum(["chirp", "physical"], { error: "--bank: expected chirp or physical" }),
    factorized: z
      .string()
      .transform((v) => v.split(",").map((x) => x.trim()).filter(Boolean))
      .pipe(z.array(z.string().regex(/^[A-Z][A-Z0-9]$/, "--factorized: expected detector names such as H1,L1")))
      .optional(),
    force: z.boolean(),
    json: z.boolean(),
  })
  .superRefine((o, ctx) => {
    checkGeometry(o, ctx);
    if (o.factorized && o.factorized.length !== o.ifos)
      ctx.addIssue({ code: "custom", path: ["factorized"], message: `--factorized: ${o.factorized.length} detectors named (${o.factorized.join(",")}), but --ifos is ${o.ifos}` });
    if (o.bank === "physical" && Math.round(0.625 * o.sampleRate) > Math.round(o.kernelLength * o.sampleRate))
      ctx.addIssue({ code: "custom", path: ["kernelLength"], message: `--bank physical: its templates are 0.625 s long; --kernel-length ${o.kernelLength} s is shorter` });
    const maxBatch = o.maxBatchSize ?? Math.max(o.batchSize, 128);
    if (maxBatch < o.batchSize) {
      ctx.addIssue({ code: "custom", path: ["maxBatchSize"], message: `--max-batch-size: ${maxBatch} is below --batch-size ${o.batchSize} (the ensemble sends batch-size windows at once)` });
    }
  });

export type ModelRepoFlags = z.infer<typeof Flags>;

const MODELS = ["detector", "snapshotter", "detector-stream"] as const;

export interface ModelRepoResult {
  repository: string;
  /** slides: the factorized pair's entry point (--factorized) */
  models: { detector: string; snapshotter: string; ensemble: string; slides?: string };
  bank: "chirp" | "physical";
  ifos: number;
  kernel_samples: number;
  stride_samples: number;
  batch_size: number;
  max_batch_size: number;
  dynamic_batching: boolean;
  device: "cpu" | "gpu";
  instances: number;
  /** snapshotter instances: sequence slots (streams) per server */
  streams: number;
  /** the detector runs through TensorRT FP16 on Triton (--device gpu without --no-tensorrt) */
  tensorrt: boolean;
  update_samples: number;
  state_samples: number;
  files: string[];
  campaign: { data: { sample_rate: number }; model: { name: string; factorized?: boolean }; inference: { kernel_length: number; inference_sampling_rate: number; batch_size: number } };
}

export function writeModelRepository(o: ModelRepoFlags): ModelRepoResult {
  const repository = resolve(o.out);
  const existing = MODELS.filter((m) => existsSync(join(repository, m)));
  if (existing.length && !o.force) {
    throw new Error(`model-repo: ${repository} already holds ${existing.join(", ")}; pass --force to overwrite (a Triton server using it must reload)`);
  }
  const kernel = Math.round(o.kernelLength * o.sampleRate);
  const stride = Math.round(o.sampleRate / o.inferenceSamplingRate);
  const maxBatch = o.maxBatchSize ?? Math.max(o.batchSize, 128);
  // --device gpu: detector and snapshotter on the GPU, the detector through
  // TensorRT FP16 unless --no-tensorrt (the library's forGpu, one path).
  const repo = writeDemoRepository(repository, {
    nIfo: o.ifos,
    kernel,
    stride,
    batch: o.batchSize,
    maxBatchSize: maxBatch,
    dynamicBatching: o.dynamicBatching,
    instances: o.instances,
    streams: o.streams,
    gpu: o.device === "gpu" ? { tensorrtFp16: o.tensorrt } : undefined,
    bank: o.bank === "physical" ? demoBankOptions(o.sampleRate) : undefined,
    factorized: o.factorized ? { ifos: o.factorized } : undefined,
  });
  const files = [
    join(repo.detector, "config.pbtxt"),
    join(repo.detector, "1", "model.onnx"),
    join(repo.snapshotter, "config.pbtxt"),
    join(repo.snapshotter, "1", "model.onnx"),
    join(repo.ensemble, "config.pbtxt"),
    join(repo.ensemble, "1") + "/",
  ];
  return {
    repository,
    models: { detector: repo.detector, snapshotter: repo.snapshotter, ensemble: repo.ensemble, ...(repo.slides ? { slides: repo.slides } : {}) },
    bank: o.bank,
    ifos: o.ifos,
    kernel_samples: kernel,
    stride_samples: stride,
    batch_size: o.batchSize,
    max_batch_size: maxBatch,
    dynamic_batching: o.dynamicBatching,
    device: o.device,
    instances: o.instances,
    streams: o.streams,
    tensorrt: o.device === "gpu" && o.tensorrt,
    update_samples: repo.updateSize,
    state_samples: repo.stateSize,
    files,
    campaign: {
      data: { sample_rate: o.sampleRate },
      model: { name: repo.slides ?? repo.ensemble, ...(repo.slides ? { factorized: true } : {}) },
      inference: { kernel_length: o.kernelLength, inference_sampling_rate: o.inferenceSamplingRate, batch_size: o.batchSize },
    },
  };
}

/** The command's defaults (strings, as commander hands them over). */
export const MODEL_REPO_DEFAULTS = {
  ifos: "2",
  kernelLength: "1.5",
  sampleRate: "2048",
  inferenceSamplingRate: "4",
  batchSize: "128",
  dynamicBatching: true,
  device: "cpu",
  instances: "1",
  streams: String(DEFAULT_STREAMS),
  tensorrt: true,
  bank: "chirp",
  force: false,
  json: false,
};

/** Checks flags (missing ones take the command's defaults). */
export function parseModelRepoFlags(raw: Record<string, unknown>): ModelRepoFlags {
  const given = Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== undefined));
  const parsed = Flags.safeParse({ ...MODEL_REPO_DEFAULTS, ...given });
  if (!parsed.success) throw new Error(`model-repo: ${parsed.error.issues.map((i) => i.message).join("; ")}`);
  return parsed.data;
}

/** Flags of `model-repo stream`: the campaign's inference settings, as samples. */
const StreamFlags = z
  .object({
    model: z.string({ error: "--model: the model the windows go to is required (--model NAME)" }).trim().min(1, "--model: expected a model name"),
    kernelLength: num("--kernel-length"),
    sampleRate: int("--sample-rate", 1),
    inferenceSamplingRate: num("--inference-sampling-rate"),
    batchSize: int("--batch-size", 1),
    ifos: int("--ifos", 1, 16).optional(),
    input: z.string().trim().min(1).optional(),
    output: z.string().trim().min(1).optional(),
    snapshotter: z.string().trim().min(1).optional(),
    device: z.enum(["cpu", "gpu"], { error: "--device: expected cpu or gpu" }),
    streams: int("--streams", 1, 1024).optional(),
    json: z.boolean(),
  })
  .superRefine(checkGeometry);

const AddFlags = z.object({
  version: int("--version", 1).optional(),
  maxBatchSize: int("--max-batch-size", 1).optional(),
  dynamicBatching: z.boolean(),
  device: z.enum(["cpu", "gpu"], { error: "--device: expected cpu or gpu" }).optional(),
  instances: int("--instances", 1, 64).optional(),
  tensorrt: z.boolean(),
  json: z.boolean(),
});

/** Flags of `model-repo add-pair`: the pair's files, detectors and the campaign's streaming geometry. */
const PairFlags = z
  .object({
    encoder: z
      .array(z.string().trim().min(1), { error: "--encoder: an encoder ONNX file is required (--encoder enc.onnx, or --encoder H1=h1.onnx --encoder L1=l1.onnx)" })
      .min(1, "--encoder: an encoder ONNX file is required (--encoder enc.onnx, or --encoder H1=h1.onnx --encoder L1=l1.onnx)"),
    head: z.string({ error: "--head: the head ONNX file is required (--head head.onnx)" }).trim().min(1, "--head: expected an ONNX file"),
    ifos: z
      .string({ error: "--ifos: the detectors, in the campaign's order, are required (--ifos H1,L1)" })
      .transform((v) => v.split(",").map((x) => x.trim()).filter(Boolean))
      .pipe(z.array(z.string().regex(/^[A-Z][A-Z0-9]$/, "--ifos: expected detector names such as H1,L1")).min(1, "--ifos: expected at least one detector")),
    whole: z.string().trim().min(1).optional(),
    kernelLength: num("--kernel-length"),
    sampleRate: int("--sample-rate", 1),
    inferenceSamplingRate: num("--inference-sampling-rate"),
    batchSize: int("--batch-size", 1),
    headMaxBatchSize: int("--head-max-batch-size", 1).optional(),
    device: z.enum(["cpu", "gpu"], { error: "--device: expected cpu or gpu" }).optional(),
    streams: int("--streams", 1, 1024).optional(),
    json: z.boolean(),
  })
  .superRefine((o, ctx) => {
    checkGeometry(o, ctx);
    const dup = o.ifos.find((x, i) => o.ifos.indexOf(x) !== i);
    if (dup) ctx.addIssue({ code: "custom", path: ["ifos"], message: `--ifos: ${dup} is named twice` });
    const per = o.encoder.filter((e) => /^[A-Z][A-Z0-9]=/.test(e));
    if (per.length && per.length !== o.encoder.length)
      ctx.addIssue({ code: "custom", path: ["encoder"], message: `--encoder: give one shared encoder (--encoder enc.onnx) or one per detector (--encoder H1=h1.onnx ...), not both` });
    if (!per.length && o.encoder.length > 1)
      ctx.addIssue({ code: "custom", path: ["encoder"], message: `--encoder: ${o.encoder.length} files without detectors; name each (--encoder H1=h1.onnx --encoder L1=l1.onnx) or give one shared encoder` });
    if (per.length) {
      const named = per.map((e) => e.slice(0, e.indexOf("=")));
      const missing = o.ifos.filter((i) => !named.includes(i));
      const extra = named.filter((i) => !o.ifos.includes(i));
      if (missing.length) ctx.addIssue({ code: "custom", path: ["encoder"], message: `--encoder: no encoder for ${missing.join(", ")} (--ifos ${o.ifos.join(",")}); add --encoder ${missing[0]}=FILE` });
      if (extra.length) ctx.addIssue({ code: "custom", path: ["encoder"], message: `--encoder: ${extra.join(", ")} is not among --ifos ${o.ifos.join(",")}` });
      const twice = named.find((x, i) => named.indexOf(x) !== i);
      if (twice) ctx.addIssue({ code: "custom", path: ["encoder"], message: `--encoder: ${twice} has two encoders` });
    }
  });

/** `model-repo add-pair` flags (missing geometry takes the campaign's defaults). */
export function parsePairFlags(raw: Record<string, unknown>) {
  return parseFlags(PairFlags, "add-pair", raw, {
    kernelLength: MODEL_REPO_DEFAULTS.kernelLength,
    sampleRate: MODEL_REPO_DEFAULTS.sampleRate,
    inferenceSamplingRate: MODEL_REPO_DEFAULTS.inferenceSamplingRate,
    batchSize: MODEL_REPO_DEFAULTS.batchSize,
    json: false,
  });
}

/** Writes a user's factorized pair (addFactorized) from parsed add-pair flags. */
export function addPair(dir: string, name: string, o: ReturnType<typeof parsePairFlags>) {
  const file = (f: string) => {
    if (!existsSync(f)) throw new Error(`model-repo add-pair: ${f}: no such file`);
    return f;
  };
  const encoder = o.encoder.some((e) => e.includes("=") && /^[A-Z][A-Z0-9]=/.test(e))
    ? Object.fromEntries(o.encoder.map((e) => [e.slice(0, e.indexOf("=")), file(e.slice(e.indexOf("=") + 1))]))
    : file(o.encoder[0]);
  const kernel = Math.round(o.kernelLength * o.sampleRate);
  const stride = Math.round(o.sampleRate / o.inferenceSamplingRate);
  const r = addFactorized(resolve(dir), name, {
    encoder,
    head: file(o.head),
    ifos: o.ifos,
    kernel,
    stride,
    batch: o.batchSize,
    whole: o.whole,
    headMaxBatchSize: o.headMaxBatchSize,
    streams: o.streams,
    instances: o.device ? { count: 1, kind: o.device === "gpu" ? "KIND_GPU" : "KIND_CPU" } : undefined,
  });
  const campaign = {
    data: { sample_rate: o.sampleRate },
    model: { name: r.slides, factorized: true },
    inference: { kernel_length: o.kernelLength, inference_sampling_rate: o.inferenceSamplingRate, batch_size: o.batchSize },
  };
  return { ...r, kernel_samples: kernel, stride_samples: stride, campaign };
}

function parseFlags<T extends z.ZodType>(schema: T, cmd: string, raw: Record<string, unknown>, defaults: Record<string, unknown> = {}): z.output<T> {
  const given = Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== undefined));
  const parsed = schema.safeParse({ ...defaults, ...given });
  if (!parsed.success) throw new Error(`model-repo ${cmd}: ${parsed.error.issues.map((i) => i.message).join("; ")}`);
  return parsed.data;
}

/** `model-repo stream` flags (missing ones take the campaign's defaults). */
export function parseStreamFlags(raw: Record<string, unknown>) {
  return parseFlags(StreamFlags, "stream", raw, {
    kernelLength: MODEL_REPO_DEFAULTS.kernelLength,
    sampleRate: MODEL_REPO_DEFAULTS.sampleRate,
    inferenceSamplingRate: MODEL_REPO_DEFAULTS.inferenceSamplingRate,
    batchSize: MODEL_REPO_DEFAULTS.batchSize,
    device: "cpu",
    json: false,
  });
}

const out = (s: string) => process.stdout.write(s.endsWith("\n") ? s : `${s}\n`);
const warn = (w: string) => process.stderr.write(`warning: ${w}\n`);

/** The demo repository (the command's original form: `model-repo --out DIR ...`). */
function demoAction(raw: Record<string, unknown>) {
  return run(async () => {
    const o = parseModelRepoFlags(raw);
    const r = writeModelRepository(o);
    if (o.json) {
      out(JSON.stringify(r, null, 2));
      return;
    }
    out(
      [
        `wrote model repository ${r.repository}`,
        ...r.files.map((f) => `  ${f}`),
        `models: ${r.models.ensemble} (streaming ensemble) = ${r.models.snapshotter} -> ${r.models.detector} (${r.bank === "physical" ? "the physical chirp bank: coincidence in time and template, reweighted SNR" : "the random chirp bank"})`,
        ...(r.models.slides ? [`  factorized pair: ${r.models.slides} (campaign: model.factorized: true); the whole model ${r.models.ensemble} is declared as its equivalent`] : []),
        `  ${r.ifos} ifos, kernel ${r.kernel_samples} samples, stride ${r.stride_samples} samples, ${r.batch_size} windows per update`,
        `  update [1, ${r.ifos}, ${r.update_samples}], state ${r.state_samples} samples per ifo, detector max_batch_size ${r.max_batch_size}` +
          `${r.dynamic_batching ? ", dynamic batching" : ""}, ${r.instances} ${r.device.toUpperCase()} instance(s)` +
          `${r.device === "gpu" ? `${r.instances > 1 ? " per GPU" : ""}, snapshotter on the GPU, detector ${r.tensorrt ? "through TensorRT FP16" : "without TensorRT (CUDA)"}` : ""}`,
        `  snapshotter: ${r.streams} instance(s) = ${r.streams} sequence slot(s) per server (--streams)`,
        `campaign settings to match: data.sample_rate ${r.campaign.data.sample_rate}, model.name ${r.campaign.model.name}${r.campaign.model.factorized ? ", model.factorized true" : ""}, ` +
          `inference.kernel_length ${r.campaign.inference.kernel_length}, inference_sampling_rate ${r.campaign.inference.inference_sampling_rate}, batch_size ${r.campaign.inference.batch_size}`,
      ].join("\n"),
    );
  });
}

/** The streaming geometry, as the campaign's inference block names it: shared by `demo` and `stream`. */
function geometryOptions(c: Command): Command {
  return c
    .option("--kernel-length <s>", "window length in seconds (inference.kernel_length)", MODEL_REPO_DEFAULTS.kernelLength)
    .option("--sample-rate <hz>", "analysis sample rate (data.sample_rate)", MODEL_REPO_DEFAULTS.sampleRate)
    .option("--inference-sampling-rate <hz>", "windows per second (inference.inference_sampling_rate)", MODEL_REPO_DEFAULTS.inferenceSamplingRate)
    .option("--batch-size <n>", "windows per streaming update (inference.batch_size)", MODEL_REPO_DEFAULTS.batchSize);
}

/** The demo's flags, on `model-repo` itself (the original form) and on `model-repo demo`. */
function demoOptions(c: Command): Command {
  return geometryOptions(
    c.option("--out <dir>", "repository directory to write (required)").option("--ifos <n>", "number of detectors", MODEL_REPO_DEFAULTS.ifos),
  )
    .option("--max-batch-size <n>", "detector max_batch_size (default: max(batch-size, 128))")
    .option("--no-dynamic-batching", "do not merge concurrent detector requests into one run")
    .option("--device <kind>", "instance kind of the ONNX models: cpu or gpu (Triton on GPU nodes: detector and snapshotter KIND_GPU, detector through TensorRT FP16)", MODEL_REPO_DEFAULTS.device)
    .option("--instances <n>", "detector instances per server (instance_group count; per GPU with --device gpu)", MODEL_REPO_DEFAULTS.instances)
    .option(
      "--streams <n>",
      "snapshotter instances per server = sequences (streams) it carries at once; Triton gives a sequence model one slot per instance and queues further sequences. " +
        "Size: workers × --concurrency × --sequences ÷ servers (8 = two default workers; aframe: 6 per GPU)",
      MODEL_REPO_DEFAULTS.streams,
    )
    .option("--no-tensorrt", "with --device gpu: no TensorRT accelerator block (ONNX Runtime's CUDA provider alone)")
    .option("--bank <kind>", "the detector's templates: chirp (8 random chirps, sum of detectors) or physical (timeslide demo's search: synth's waveform family, coincidence, reweighted SNR)", MODEL_REPO_DEFAULTS.bank)
    .option("--factorized <ifos>", "also write the detector as a factorized pair <detector>-slides for these detectors (e.g. H1,L1): encoder per detector + head")
    .option("--force", "overwrite the models if the directory already holds them")
    .option("--json", "print what was written as JSON");
}

export function registerModelRepo(program: Command): void {
  // Options after a subcommand belong to it (`model-repo demo --out DIR`), not to `model-repo`.
  program.enablePositionalOptions();
  const repo = demoOptions(
    program
      .command("model-repo")
      .description("manage a Triton model repository: init, add an ONNX model, stream (snapshotter + ensemble), list, check; or write the demo one (demo, or --out DIR)")
      .enablePositionalOptions(),
  )
    .addHelpText(
      "after",
      [
        "",
        "Your own model (exported to ONNX, any tensor names):",
        "  timeslide model-repo init models",
        "  timeslide model-repo add models mynet mynet.onnx            # next version; config.pbtxt from the graph",
        "  timeslide model-repo stream models mynet-stream --model mynet --kernel-length 1.5 --sample-rate 2048 --inference-sampling-rate 4 --batch-size 128",
        "  timeslide model-repo check models                            # the rules timeslide serve applies at load",
        "A factorized model (encoder per detector + head; README: Factorized models):",
        "  timeslide model-repo add-pair models mynet --encoder enc.onnx --head head.onnx --ifos H1,L1 --kernel-length 1 --sample-rate 2048 --inference-sampling-rate 16",
        "  timeslide model-repo list models [--json]",
        "then model.name: mynet-stream in the campaign.",
        "",
        "The demo repository (detector, snapshotter, detector-stream):",
        "  timeslide model-repo demo --out models      (also: timeslide model-repo --out models)",
        "  timeslide model-repo demo --out /shared/models --device gpu --instances 2 --batch-size 256",
        "  timeslide serve --repo models --port 8001",
        "The campaign that streams through it must use the same data.sample_rate,",
        "inference.kernel_length, inference_sampling_rate and batch_size, and model.name detector-stream.",
      ].join("\n"),
    )
    .action((raw: Record<string, unknown>) => demoAction(raw));

  demoOptions(repo.command("demo").description("write the demo repository: the demo detector (--bank chirp or physical), the snapshotter and the streaming ensemble detector-stream; --factorized also writes it as a pair (detector-slides)")).action(
    (raw: Record<string, unknown>) => demoAction(raw),
  );

  repo
    .command("init")
    .description("create an empty model repository")
    .argument("<dir>", "repository directory")
    .action((dir: string) =>
      run(async () => {
        const d = initRepository(dir);
        out(`model repository ${d}\nnext: timeslide model-repo add ${dir} NAME model.onnx`);
      }),
    );

  repo
    .command("add")
    .description("add an ONNX model as the next version of NAME, writing config.pbtxt from the graph (names, data types, shapes; a dynamic first axis becomes max_batch_size)")
    .argument("<dir>", "repository directory")
    .argument("<name>", "model name (its folder)")
    .argument("<onnx>", "ONNX file (e.g. from torch.onnx.export)")
    .option("--version <n>", "version folder (default: the next free one)")
    .option("--max-batch-size <n>", "max_batch_size for a graph with a dynamic batch axis (default 128)")
    .option("--no-dynamic-batching", "do not merge concurrent requests into one run")
    .option("--device <kind>", "instance kind: cpu or gpu (default: Triton's choice); gpu also writes the TensorRT FP16 accelerator block")
    .option("--instances <n>", "instances per server (instance_group count; per GPU with --device gpu)")
    .option("--no-tensorrt", "with --device gpu: no TensorRT accelerator block (ONNX Runtime's CUDA provider alone)")
    .option("--json", "print what was written as JSON")
    .addHelpText("after", "\nExample:\n  timeslide model-repo add models mynet exported/mynet.onnx --max-batch-size 256")
    .action((dir: string, name: string, onnx: string, raw: Record<string, unknown>) =>
      run(async () => {
        const o = parseFlags(AddFlags, "add", raw, { dynamicBatching: true, tensorrt: true, json: false });
        if (!existsSync(onnx)) throw new Error(`model-repo add: ${onnx}: no such file`);
        const gpu = o.device === "gpu";
        const r = addModel(resolve(dir), name, onnx, {
          version: o.version,
          maxBatchSize: o.maxBatchSize,
          dynamicBatching: o.dynamicBatching,
          instances: !gpu && (o.device || o.instances) ? { count: o.instances ?? 1, kind: "KIND_CPU" } : undefined,
          gpu: gpu ? { count: o.instances ?? 1, tensorrtFp16: o.tensorrt } : undefined,
        });
        for (const w of r.warnings) warn(w);
        if (o.json) {
          out(JSON.stringify({ name: r.name, version: r.version, file: r.file, config: r.config, warnings: r.warnings }, null, 2));
          return;
        }
        const c = r.config;
        const mbs = Number(c.max_batch_size ?? 0);
        const t = (x: { name: string; data_type: string; dims: number[] }) => `${x.name} ${x.data_type.replace("TYPE_", "")} [${(mbs > 0 ? [-1, ...x.dims] : x.dims).join(", ")}]`;
        out(
          [
            `added ${r.name} version ${r.version}: ${r.file}`,
            `  max_batch_size ${mbs}${mbs > 0 ? " (dynamic batch axis)" : " (fixed shapes: the model takes exactly these per request)"}`,
            ...(c.input ?? []).map((x) => `  input  ${t(x)}`),
            ...(c.output ?? []).map((x) => `  output ${t(x)}`),
            ...(c.instance_group ?? []).map((g) => `  ${g.count ?? 1} ${g.kind} instance(s)${g.kind === "KIND_GPU" ? (c.optimization ? " per GPU, TensorRT FP16" : " per GPU, no TensorRT") : ""}`),
            `next: timeslide model-repo stream ${dir} ${name}-stream --model ${name} --kernel-length S --sample-rate HZ --inference-sampling-rate HZ --batch-size N`,
          ].join("\n"),
        );
      }),
    );

  geometryOptions(
    repo
      .command("stream")
      .description("wrap a model for streaming: a snapshotter (server-side state) and an ensemble NAME taking update [1, n_ifo, stride*batch], wired by the model's own tensor names")
      .argument("<dir>", "repository directory")
      .argument("<name>", "ensemble name (the campaign's model.name)")
      .option("--model <name>", "the model that takes the windows (required)"),
  )
    .option("--ifos <n>", "number of detectors (default: from the model's input shape)")
    .option("--input <tensor>", "the model input that takes the windows (when it has several)")
    .option("--output <tensor>", "the model output that is the detection statistic (when it has several)")
    .option("--snapshotter <name>", "snapshotter model name (default: NAME-snapshotter)")
    .option("--device <kind>", "snapshotter instance kind: cpu or gpu", "cpu")
    .option("--streams <n>", `snapshotter instances = sequence slots per server (default ${DEFAULT_STREAMS}; Triton: one per instance)`)
    .option("--json", "print what was written as JSON")
    .addHelpText("after", "\nExample:\n  timeslide model-repo stream models mynet-stream --model mynet --kernel-length 1 --sample-rate 2048 --inference-sampling-rate 16 --batch-size 64")
    .action((dir: string, name: string, raw: Record<string, unknown>) =>
      run(async () => {
        const o = parseStreamFlags(raw);
        const kernel = Math.round(o.kernelLength * o.sampleRate);
        const stride = Math.round(o.sampleRate / o.inferenceSamplingRate);
        const r = addStreaming(resolve(dir), name, {
          model: o.model,
          kernel,
          stride,
          batch: o.batchSize,
          nIfo: o.ifos,
          input: o.input,
          output: o.output,
          snapshotter: o.snapshotter,
          kind: o.device === "gpu" ? "KIND_GPU" : "KIND_CPU",
          streams: o.streams,
        });
        const campaign = { data: { sample_rate: o.sampleRate }, model: { name: r.ensemble }, inference: { kernel_length: o.kernelLength, inference_sampling_rate: o.inferenceSamplingRate, batch_size: o.batchSize } };
        if (o.json) {
          out(JSON.stringify({ ...r, kernel_samples: kernel, stride_samples: stride, batch_size: o.batchSize, campaign }, null, 2));
          return;
        }
        out(
          [
            `wrote ${r.ensemble} (streaming ensemble) = ${r.snapshotter} -> ${r.model} (windows -> input '${r.input}', output '${r.output}')`,
            `  ${r.nIfo} ifos, kernel ${kernel} samples, stride ${stride} samples, ${o.batchSize} windows per update: update [1, ${r.nIfo}, ${r.updateSize}], state ${r.stateSize} samples per ifo`,
            `campaign settings to match: data.sample_rate ${o.sampleRate}, model.name ${r.ensemble}, inference.kernel_length ${o.kernelLength}, inference_sampling_rate ${o.inferenceSamplingRate}, batch_size ${o.batchSize}`,
          ].join("\n"),
        );
      }),
    );

  geometryOptions(
    repo
      .command("add-pair")
      .description(
        "add a factorized (late-fusion) model: an encoder per detector ([batch, 1, kernel] -> [batch, D]; one shared or one per detector) and a head " +
          "([batch, n_ifo, D] -> [batch, 1]), served as NAME-slides (README: Factorized models)",
      )
      .argument("<dir>", "repository directory")
      .argument("<name>", "pair name: writes NAME-encoder[-IFO](-stream), NAME-head, NAME-slide-gather and NAME-slides")
      .option("--encoder <onnx>", "encoder ONNX file shared by all detectors, or IFO=FILE once per detector (repeat)", (v: string, acc: string[] = []) => [...acc, v])
      .option("--head <onnx>", "head ONNX file (required)")
      .option("--ifos <list>", "detectors in the campaign's order, the head's detector axis (required), e.g. H1,L1"),
  )
    .option("--whole <stream>", "the equivalent whole model's streaming ensemble, already in the repository (declared in the pair)")
    .option("--head-max-batch-size <n>", "most (shift, window) pairs one slides request may ask for (default 65536)")
    .option("--device <kind>", "instance kind of the pair's models: cpu or gpu")
    .option("--streams <n>", `snapshotter instances per encoder stream (default ${DEFAULT_STREAMS})`)
    .option("--json", "print what was written as JSON")
    .addHelpText(
      "after",
      [
        "",
        "Examples:",
        "  timeslide model-repo add-pair models mynet --encoder enc.onnx --head head.onnx --ifos H1,L1 --kernel-length 1 --sample-rate 2048 --inference-sampling-rate 16",
        "  timeslide model-repo add-pair models mynet --encoder H1=enc_h1.onnx --encoder L1=enc_l1.onnx --head head.onnx --ifos H1,L1 --whole mynet-stream",
        "then, in the campaign: model: { name: mynet-slides, factorized: true }",
      ].join("\n"),
    )
    .action((dir: string, name: string, raw: Record<string, unknown>) =>
      run(async () => {
        const o = parsePairFlags(raw);
        const r = addPair(dir, name, o);
        if (o.json) {
          out(JSON.stringify(r, null, 2));
          return;
        }
        const streams = [...new Set(Object.values(r.encoders).map((e) => e.ensemble))];
        out(
          [
            `wrote factorized pair ${r.slides} (D = ${r.embeddingDim}, ${o.ifos.length} detectors)`,
            ...o.ifos.map((ifo) => `  ${ifo}: ${r.encoders[ifo].ensemble} = ${r.encoders[ifo].snapshotter} -> ${r.encoders[ifo].model}`),
            `  ${r.slides} = ${r.gather} -> ${r.head}${o.whole ? `; whole model ${o.whole}` : ""}`,
            `  ${streams.length} encoder stream(s), kernel ${r.kernel_samples} samples, stride ${r.stride_samples} samples, ${o.batchSize} windows per update`,
            `campaign settings to match: data.sample_rate ${o.sampleRate}, model: { name: ${r.slides}, factorized: true }, ` +
              `inference.kernel_length ${o.kernelLength}, inference_sampling_rate ${o.inferenceSamplingRate}, batch_size ${o.batchSize}`,
          ].join("\n"),
        );
      }),
    );

  repo
    .command("list")
    .description("models, versions, inputs and outputs, streaming state and ensemble wiring (with any problem the check finds)")
    .argument("<dir>", "repository directory")
    .option("--json", "print JSON")
    .action((dir: string, opts: { json?: boolean }) =>
      run(async () => {
        const l = listRepository(dir);
        out(opts.json ? JSON.stringify(l, null, 2) : formatListing(l));
      }),
    );

  repo
    .command("check")
    .description("check every model against its ONNX graph and every ensemble's wiring, with the rules timeslide serve applies at load; exit 1 on any problem")
    .argument("<dir>", "repository directory")
    .option("--json", "print JSON")
    .action((dir: string, opts: { json?: boolean }) =>
      run(async () => {
        const r = checkRepository(resolve(dir));
        const problems = [...r.models.flatMap((m) => m.problems), ...r.skipped.map((s) => `folder '${s.folder}' is skipped: ${s.reason}`)];
        if (opts.json) {
          out(
            JSON.stringify({
              repository: r.repository,
              ok: problems.length === 0,
              models: r.models.map((m) => ({ name: m.name, versions: m.versions, served: m.served, ok: m.problems.length === 0, problems: m.problems })),
              skipped: r.skipped,
            }),
          );
        } else {
          const lines = r.models.map((m) => `${m.problems.length ? "FAIL" : "ok  "} ${m.name}${m.served.length ? ` (version ${m.served.join(", ")})` : ""}`);
          for (const m of r.models) for (const p of m.problems) lines.push(`  ${p}`);
          for (const s of r.skipped) lines.push(`skip ${s.folder}: ${s.reason}`);
          lines.push(problems.length ? `${problems.length} problem(s) in ${r.repository}` : `${r.models.length} model(s) in ${r.repository}: all load`);
          out(lines.join("\n"));
        }
        if (problems.length) process.exitCode = 1;
      }),
    );
}
