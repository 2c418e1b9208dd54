#!/usr/bin/env node
// Runs every benchmark: packages/*/bench/*.bench.mjs and apps/*/bench/*.bench.mjs,
// one child process each (so one benchmark's heap never skews another's).
// `npm run bench -- strain` runs only files whose path contains "strain".
import { readdirSync, existsSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";

const filter = process.argv[2] ?? "";
const files = [];
for (const top of ["packages", "apps"]) {
  for (const pkg of readdirSync(top)) {
    const dir = join(top, pkg, "bench");
    if (!existsSync(dir)) continue;
    for (const f of readdirSync(dir).sort()) if (f.endsWith(".bench.mjs")) files.push(join(dir, f));
  }
}
let failed = 0;
for (const file of files.filter((f) => f.includes(filter))) {
  console.log(`\n=== ${file}`);
  const r = spawnSync(process.execPath, ["--expose-gc", file], { stdio: "inherit" });
  if (r.status !== 0) { failed++; console.log(`!!! ${file} exited ${r.status}`); }
}
process.exit(failed ? 1 : 0);
