import { readFile } from "node:fs/promises";
import { dirname, resolve, basename } from "node:path";
import { parseDocument } from "yaml";
import type { z } from "zod";
import { maxLightTravelTime } from "@timeslide/segments";
import { CampaignSpec, psdFftLength } from "./schema.js";

/** A refused campaign: every problem found, each naming the file and field. */
export class CampaignError extends Error {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(problems.length === 1 ? problems[0] : `${file}: ${problems.length} problems:\n  ${problems.join("\n  ")}`);
    this.name = "CampaignError";
  }
}

export interface LoadedCampaign {
  spec: CampaignSpec;
  /** the campaign file (absolute) */
  file: string;
  /** directory relative paths in the spec are resolved against */
  baseDir: string;
  /** absolute output directory */
  output: string;
  /** things worth saying that do not stop the campaign */
  warnings: string[];
}

function fieldPath(path: ReadonlyArray<PropertyKey>): string {
  return path.reduce<string>((acc, k) => (typeof k === "number" ? `${acc}[${k}]` : acc ? `${acc}.${String(k)}` : String(k)), "");
}

export function formatIssues(file: string, issues: readonly z.core.$ZodIssue[]): string[] {
  return issues.map((i) => {
    const where = fieldPath(i.path) || "(top level)";
    if (i.code === "unrecognized_keys") return `${file}: ${where}: unknown field${i.keys.length > 1 ? "s" : ""} ${i.keys.map((k) => `"${k}"`).join(", ")}`;
    if (i.code === "invalid_type" && i.input === undefined) return `${file}: ${where}: required field is missing`;
    return `${file}: ${where}: ${i.message}`;
  });
}

/** Parse and check a campaign given as text (file names are for messages and relative paths). */
export function parseCampaign(text: string, file: string): LoadedCampaign {
  const shown = basename(file);
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length) throw new CampaignError(shown, doc.errors.map((e) => `${shown}: ${e.message.split("\n")[0]}`));
  const raw = doc.toJS();
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) throw new CampaignError(shown, [`${shown}: expected a YAML mapping of campaign fields`]);
  const r = CampaignSpec.safeParse(raw, { reportInput: true });
  if (!r.success) throw new CampaignError(shown, formatIssues(shown, r.error.issues));
  const spec = r.data;
  const { problems, warnings } = checkConsistency(spec);
  if (problems.length) throw new CampaignError(shown, problems.map((p) => `${shown}: ${p}`));
  const baseDir = dirname(resolve(file));
  return {
    spec,
    file: resolve(file),
    baseDir,
    output: resolve(baseDir, spec.output ?? `results/${spec.name}`),
    warnings,
  };
}

export async function loadCampaign(file: string): Promise<LoadedCampaign> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    throw new CampaignError(file, [`${file}: cannot read the campaign file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`]);
  }
  return parseCampaign(text, file);
}

/** Checks that need more than one field. */
export function checkConsistency(spec: CampaignSpec): { problems: string[]; warnings: string[] } {
  const problems: string[] = [];
  const warnings: string[] = [];
  const inf = spec.inference;
  const fs = spec.data.sample_rate;
  const bg = spec.background;

  const light = maxLightTravelTime(spec.ifos);
  const lightText = `the ${light.pair.join("–")} light-travel time`;
  if (!(bg.step > light.seconds)) {
    problems.push(`background.step: expected a number > ${light.seconds.toFixed(4)} s (${lightText}), got ${JSON.stringify(bg.step)}`);
  } else if (bg.step < inf.kernel_length) {
    warnings.push(
      `background.step ${bg.step} s is shorter than inference.kernel_length ${inf.kernel_length} s: ` +
        `a signal could sit in both detectors of one window in adjacent slides`,
    );
  }
  if (Array.isArray(bg.shifts)) {
    bg.shifts.forEach((v, k) => {
      const at = `background.shifts[${k}]`;
      if (v.length !== spec.ifos.length) problems.push(`${at}: expected ${spec.ifos.length} offsets (one per detector in ifos), got ${v.length}`);
      else if (v[0] !== 0) problems.push(`${at}: expected offset 0 for the reference detector ${spec.ifos[0]}, got ${v[0]}`);
      else if (v.some((x) => !(x >= 0))) problems.push(`${at}: expected offsets ≥ 0, got ${JSON.stringify(v)}`);
      else {
        for (let i = 0; i < v.length; i++)
          for (let j = i + 1; j < v.length; j++)
            if (Math.abs(v[i] - v[j]) <= light.seconds)
              problems.push(`${at}: ${spec.ifos[i]} and ${spec.ifos[j]} are offset by ${Math.abs(v[i] - v[j])} s, not more than ${lightText} (${light.seconds.toFixed(4)} s): that is zero lag`);
      }
    });
  }
  const kernelSamples = inf.kernel_length * fs;
  if (Math.abs(kernelSamples - Math.round(kernelSamples)) > 1e-6)
    problems.push(`inference.kernel_length: expected a whole number of samples at ${fs} Hz, got ${inf.kernel_length} s (${kernelSamples} samples)`);
  const stride = fs / inf.inference_sampling_rate;
  if (Math.abs(stride - Math.round(stride)) > 1e-6)
    problems.push(`inference.inference_sampling_rate: expected a rate that divides data.sample_rate ${fs} Hz, got ${inf.inference_sampling_rate} Hz`);
  if (inf.highpass >= fs / 2) problems.push(`inference.highpass: expected a frequency below Nyquist (${fs / 2} Hz), got ${inf.highpass} Hz`);
  const fft = psdFftLength(inf);
  const fftSamples = fft * fs;
  if (inf.fftlength !== undefined && (Math.abs(fftSamples - Math.round(fftSamples)) > 1e-6 || (Math.round(fftSamples) & (Math.round(fftSamples) - 1)) !== 0))
    problems.push(`inference.fftlength: expected a power-of-two number of samples at ${fs} Hz, got ${inf.fftlength} s (${fftSamples} samples)`);
  if (inf.fftlength !== undefined && inf.fftlength < inf.fduration)
    problems.push(`inference.fftlength: expected at least fduration (${inf.fduration} s), got ${inf.fftlength} s`);
  if (fft > inf.psd_length) problems.push(`inference.fftlength: expected at most psd_length (${inf.psd_length} s), got ${fft} s`);
  if (inf.fduration > inf.psd_length) problems.push(`inference.fduration: expected at most psd_length (${inf.psd_length} s), got ${inf.fduration} s`);
  if (inf.kernel_length + inf.fduration / 2 > inf.psd_length)
    problems.push(`inference.psd_length: expected at least kernel_length + fduration/2 (${inf.kernel_length + inf.fduration / 2} s) so the burn-in holds the kernel and filter edges, got ${inf.psd_length} s`);
  if (!(bg.max_job_duration > inf.psd_length + 1 / inf.inference_sampling_rate))
    problems.push(`background.max_job_duration: expected more than psd_length (${inf.psd_length} s) so a job produces output, got ${bg.max_job_duration} s`);
  if (spec.data.segments.min_duration <= inf.psd_length)
    warnings.push(`data.segments.min_duration ${spec.data.segments.min_duration} s is not more than psd_length ${inf.psd_length} s: such segments give no livetime`);
  if (spec.postprocess.cluster_window < 1 / inf.inference_sampling_rate)
    problems.push(`postprocess.cluster_window: expected at least one sample (${1 / inf.inference_sampling_rate} s), got ${spec.postprocess.cluster_window} s`);
  return { problems, warnings };
}
