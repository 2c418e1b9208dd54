// `timeslide far`: FAR curve and candidate significance from events files
// written by anyone (other pipelines included).
import { readBackground, readEvents } from "@timeslide/stats";
import type { ReportJson } from "@timeslide/report";
import { farCurveBlock, foregroundRows, livetimeBlock } from "./build.js";

export interface FarResult {
  livetime: ReportJson["livetime"];
  far_curve: ReportJson["far_curve"];
  foreground: ReportJson["foreground"];
}

export async function farFromFiles(o: { background: string; foreground?: string; maxPoints?: number }): Promise<FarResult> {
  const bg = await readBackground(o.background);
  const fg = o.foreground ? await readEvents(o.foreground) : null;
  if (fg && fg.nIfo && bg.nIfo !== fg.nIfo) {
    throw new Error(`${o.foreground}: /events/shift has ${fg.nIfo} columns but ${o.background} has ${bg.nIfo}: not the same detectors`);
  }
  const tfg = fg?.livetime ?? 0;
  return {
    livetime: livetimeBlock(bg, tfg),
    far_curve: farCurveBlock(bg, o.maxPoints ?? 500),
    foreground: fg ? foregroundRows(bg, fg, tfg).rows : [],
  };
}
