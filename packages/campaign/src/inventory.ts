import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { glob } from "tinyglobby";
import { SegmentList, segmentsFromDQMask } from "@timeslide/segments";
import { readStrainFileInfo, type StrainFileInfo } from "@timeslide/strain";
import { CampaignError, type LoadedCampaign } from "./load.js";

/** What the campaign's data holds, per detector, as far as planning needs it. */
export interface DataInventory {
  /** files per detector, sorted by start time */
  files: Record<string, StrainFileInfo[]>;
  /** sample rate of each detector's files (Hz) */
  sampleRate: Record<string, number>;
  /** time each detector's files cover */
  coverage: Record<string, SegmentList>;
  /** good time of each detector: required DQ flags set (or the segment file), inside its coverage */
  good: Record<string, SegmentList>;
  warnings: string[];
}

/**
 * Expands the file globs, reads every file's metadata and DQ mask, and checks
 * what planning relies on. All problems are collected and thrown together as
 * one CampaignError, so a user fixes them in one pass.
 */
export async function takeInventory(c: LoadedCampaign): Promise<DataInventory> {
  const { spec } = c;
  const file = c.file;
  const problems: string[] = [];
  const warnings: string[] = [];

  const paths = new Set<string>();
  for (const [i, pattern] of spec.data.files.entries()) {
    const found = await glob(pattern, { cwd: c.baseDir, absolute: true, onlyFiles: true, expandDirectories: false });
    if (found.length === 0) problems.push(`data.files[${i}]: ${JSON.stringify(pattern)} matches no file (looked in ${c.baseDir})`);
    for (const p of found) paths.add(resolve(p));
  }
  if (problems.length) throw new CampaignError(file, problems.map((p) => `${file}: ${p}`));

  const infos: StrainFileInfo[] = [];
  for (const p of [...paths].sort()) {
    try {
      infos.push(await readStrainFileInfo(p));
    } catch (e) {
      problems.push((e as Error).message);
    }
  }

  const files: Record<string, StrainFileInfo[]> = {};
  for (const ifo of spec.ifos) files[ifo] = [];
  const others = new Map<string, number>();
  for (const info of infos) {
    if (files[info.ifo]) files[info.ifo].push(info);
    else others.set(info.ifo, (others.get(info.ifo) ?? 0) + 1);
  }
  for (const [ifo, n] of others) warnings.push(`data.files: ${n} file(s) of ${ifo}, which is not in ifos, are ignored`);

  const sampleRate: Record<string, number> = {};
  const coverage: Record<string, SegmentList> = {};
  for (const ifo of spec.ifos) {
    const list = files[ifo].sort((a, b) => a.xstart - b.xstart);
    if (list.length === 0) {
      if (!problems.some((p) => p.includes(ifo))) problems.push(`data.files: no file holds ${ifo} data (meta/Detector)`);
      continue;
    }
    const first = list[0];
    for (const f of list.slice(1)) {
      if (Math.abs(f.xspacing - first.xspacing) > 1e-12 * first.xspacing)
        problems.push(
          `data.files: ${ifo} files disagree on the sample spacing: ${f.path} has ${f.xspacing} s (${f.sampleRate} Hz), ` +
            `${first.path} has ${first.xspacing} s (${first.sampleRate} Hz)`,
        );
    }
    sampleRate[ifo] = first.sampleRate;
    const target = spec.data.sample_rate;
    const factor = first.sampleRate / target;
    if (!(factor >= 1 && Math.abs(factor - Math.round(factor)) < 1e-9))
      problems.push(
        `data.sample_rate: expected a rate that divides ${ifo}'s ${first.sampleRate} Hz (resampling is by integer factors, downward), got ${target} Hz`,
      );
    coverage[ifo] = new SegmentList(list.map((f) => [f.xstart, f.xstart + f.npoints * f.xspacing] as const)).coalesce();
    for (let i = 1; i < list.length; i++) {
      const prevEnd = list[i - 1].xstart + list[i - 1].npoints * list[i - 1].xspacing;
      if (list[i].xstart < prevEnd - first.xspacing / 2)
        warnings.push(`data.files: ${list[i].path} overlaps ${list[i - 1].path} by ${prevEnd - list[i].xstart} s`);
    }
  }
  if (problems.length) throw new CampaignError(file, problems);

  const good: Record<string, SegmentList> = {};
  const seg = spec.data.segments;
  if (seg.file) {
    const path = resolve(c.baseDir, seg.file);
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (e) {
      throw new CampaignError(file, [`${file}: data.segments.file: cannot read ${path} (${(e as NodeJS.ErrnoException).code})`]);
    }
    const listed = SegmentList.fromText(text, path).coalesce();
    for (const ifo of spec.ifos) good[ifo] = listed.intersect(coverage[ifo]);
  } else {
    const flags = seg.flags ?? ["DATA"];
    for (const ifo of spec.ifos) {
      const parts: SegmentList[] = [];
      for (const f of files[ifo]) {
        try {
          parts.push(segmentsFromDQMask({ mask: f.dq.mask, names: f.dq.names, start: f.dq.start, rate: f.dq.rate, required: flags, source: f.path }));
        } catch (e) {
          problems.push(`data.segments.flags: ${(e as Error).message}`);
        }
      }
      good[ifo] = new SegmentList(parts.flatMap((p) => p.segments)).coalesce().intersect(coverage[ifo]);
    }
  }
  if (problems.length) throw new CampaignError(file, problems);
  return { files, sampleRate, coverage, good, warnings };
}
