import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import { z } from "zod";
import { DEFAULT_STREAMS, readModel, writeDemoRepository, writeModelConfig } from "@timeslide/model-repo";
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
    force: z.boolean(),
    json: z.boolean(),
  })
  .superRefine((o, ctx) => {
    const kernel = o.kernelLength * o.sampleRate;
    if (!isWhole(kernel)) {
      ctx.addIssue({ code: "custom", path: ["kernelLength"], message: `--kernel-length: ${o.kernelLength} s at ${o.sampleRate} Hz is ${kernel} samples; expected a whole number` });
    }
    const stride = o.sampleRate / o.inferenceSamplingRate;
    if (!isWhole(stride)) {
      ctx.addIssue({
        code: "custom",
        path: ["inferenceSamplingRate"],
        message: `--inference-sampling-rate: ${o.inferenceSamplingRate} Hz must divide --sample-rate ${o.sampleRate} Hz (stride ${stride} samples is not whole)`,
      });
    } else if (Math.round(stride) > Math.round(kernel)) {
      ctx.addIssue({ code: "custom", path: ["inferenceSamplingRate"], message: `--inference-sampling-rate: stride ${stride} samples exceeds the kernel (${kernel} samples): windows would skip data` });
    }
    const maxBatch = o.maxBatchSize ?? Math.max(o.batchSize, 128);
    if (maxBatch < o.batchSize) {
      ctx.addIssue({ code: "custom", path: ["maxBatchSize"], message: `--max-batch-size: ${maxBatch} is below --batch-size ${o.batchSize} (the ensemble sends batch-size windows at once)` });
    }
  });

export type ModelRepoFlags = z.infer<typeof Flags>;

const MODELS = ["detector", "snapshotter", "detector-stream"] as const;

export interface ModelRepoResult {
  repository: string;
  models: { detector: string; snapshotter: string; ensemble: string };
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
  update_samples: number;
  state_samples: number;
  files: string[];
  campaign: { data: { sample_rate: number }; model: { name: string }; inference: { kernel_length: number; inference_sampling_rate: number; batch_size: number } };
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
  const repo = writeDemoRepository(repository, {
    nIfo: o.ifos,
    kernel,
    stride,
    batch: o.batchSize,
    maxBatchSize: maxBatch,
    dynamicBatching: o.dynamicBatching,
    streams: o.streams,
  });
  // The demo writes CPU instances; on Triton GPU nodes both ONNX models
  // should run on the GPU (the snapshotter state then stays on the device).
  if (o.device === "gpu" || o.instances !== 1) {
    for (const name of [repo.detector, repo.snapshotter]) {
      const { config } = readModel(repository, name);
      const count = name === repo.detector ? o.instances : o.streams;
      config.instance_group = [{ count, kind: o.device === "gpu" ? "KIND_GPU" : "KIND_CPU" }];
      writeModelConfig(repository, config);
    }
  }
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
    models: { detector: repo.detector, snapshotter: repo.snapshotter, ensemble: repo.ensemble },
    ifos: o.ifos,
    kernel_samples: kernel,
    stride_samples: stride,
    batch_size: o.batchSize,
    max_batch_size: maxBatch,
    dynamic_batching: o.dynamicBatching,
    device: o.device,
    instances: o.instances,
    streams: o.streams,
    update_samples: repo.updateSize,
    state_samples: repo.stateSize,
    files,
    campaign: {
      data: { sample_rate: o.sampleRate },
      model: { name: repo.ensemble },
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

export function registerModelRepo(program: Command): void {
  program
    .command("model-repo")
    .description("write a Triton model repository: the demo detector, the snapshotter and the streaming ensemble detector-stream (for Triton or timeslide serve)")
    .option("--out <dir>", "repository directory to write (required)")
    .option("--ifos <n>", "number of detectors", MODEL_REPO_DEFAULTS.ifos)
    .option("--kernel-length <s>", "window length in seconds (inference.kernel_length)", MODEL_REPO_DEFAULTS.kernelLength)
    .option("--sample-rate <hz>", "analysis sample rate (data.sample_rate)", MODEL_REPO_DEFAULTS.sampleRate)
    .option("--inference-sampling-rate <hz>", "windows per second (inference.inference_sampling_rate)", MODEL_REPO_DEFAULTS.inferenceSamplingRate)
    .option("--batch-size <n>", "windows per streaming update (inference.batch_size)", MODEL_REPO_DEFAULTS.batchSize)
    .option("--max-batch-size <n>", "detector max_batch_size (default: max(batch-size, 128))")
    .option("--no-dynamic-batching", "do not merge concurrent detector requests into one run")
    .option("--device <kind>", "instance kind of the ONNX models: cpu or gpu (Triton on GPU nodes)", MODEL_REPO_DEFAULTS.device)
    .option("--instances <n>", "detector instances per server (instance_group count)", MODEL_REPO_DEFAULTS.instances)
    .option(
      "--streams <n>",
      "snapshotter instances per server = sequences (streams) it carries at once; Triton gives a sequence model one slot per instance and queues further sequences. " +
        "Size: workers × --concurrency × --sequences ÷ servers (8 = two default workers; aframe: 6 per GPU)",
      MODEL_REPO_DEFAULTS.streams,
    )
    .option("--force", "overwrite the models if the directory already holds them")
    .option("--json", "print what was written as JSON")
    .addHelpText(
      "after",
      [
        "",
        "The campaign that streams through this repository must use the same",
        "data.sample_rate, inference.kernel_length, inference_sampling_rate and",
        "batch_size, and model.name detector-stream.",
        "",
        "Examples:",
        "  timeslide model-repo --out models",
        "  timeslide model-repo --out /shared/models --device gpu --instances 2 --batch-size 256",
        "  timeslide serve --repo models --port 8001",
      ].join("\n"),
    )
    .action((raw: Record<string, unknown>) =>
      run(async () => {
        const o = parseModelRepoFlags(raw);
        const r = writeModelRepository(o);
        if (o.json) {
          process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
          return;
        }
        const lines = [
          `wrote model repository ${r.repository}`,
          ...r.files.map((f) => `  ${f}`),
          `models: ${r.models.ensemble} (streaming ensemble) = ${r.models.snapshotter} -> ${r.models.detector}`,
          `  ${r.ifos} ifos, kernel ${r.kernel_samples} samples, stride ${r.stride_samples} samples, ${r.batch_size} windows per update`,
          `  update [1, ${r.ifos}, ${r.update_samples}], state ${r.state_samples} samples per ifo, detector max_batch_size ${r.max_batch_size}` +
            `${r.dynamic_batching ? ", dynamic batching" : ""}, ${r.instances} ${r.device.toUpperCase()} instance(s)`,
          `  snapshotter: ${r.streams} instance(s) = ${r.streams} sequence slot(s) per server (--streams)`,
          `campaign settings to match: data.sample_rate ${r.campaign.data.sample_rate}, model.name ${r.campaign.model.name}, ` +
            `inference.kernel_length ${r.campaign.inference.kernel_length}, inference_sampling_rate ${r.campaign.inference.inference_sampling_rate}, batch_size ${r.campaign.inference.batch_size}`,
        ];
        process.stdout.write(`${lines.join("\n")}\n`);
      }),
    );
}
