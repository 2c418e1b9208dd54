#!/usr/bin/env node
// The `timeslide` command as npm links it (node_modules/.bin/timeslide, `npx
// timeslide`). npm links workspace bins at install time, before the build
// has written dist/main.js, so the link points here, committed, and this
// loads the build, or says how to make it.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const main = new URL("../dist/main.js", import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  process.stderr.write(`timeslide: ${fileURLToPath(main)} is not built yet: run \`npm run build\` (or \`npm run demo\`, which builds first) in the repository root\n`);
  process.exit(1);
}
await import(main.href);
