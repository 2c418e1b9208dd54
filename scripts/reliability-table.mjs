// Writes the README's reliability table from the records the suite left in
// test/.outcomes/ (run `npm test` and, for the soak rows, `npm run soak` first).
// Replaces the text between the two markers; prints the table too.
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dirname, "..");
const dir = join(root, "test", ".outcomes");
const START = "<!-- reliability-table:start -->";
const END = "<!-- reliability-table:end -->";
const cell = (s) => String(s).replace(/\|/g, "\\|").replace(/\n/g, " ");

const records = existsSync(dir)
  ? readdirSync(dir)
      .filter((f) => f.endsWith(".json") && f !== "soak.json")
      .map((f) => JSON.parse(readFileSync(join(dir, f), "utf8")))
  : [];
if (!records.length) {
  console.error(`no records in ${dir}: run npm test first`);
  process.exit(1);
}
const order = ["fault", "bad input", "security"];
records.sort((a, b) => order.indexOf(a.area) - order.indexOf(b.area) || a.case.localeCompare(b.case));
const lines = ["| area | injected / tried | outcome | evidence |", "| --- | --- | --- | --- |"];
for (const r of records) lines.push(`| ${cell(r.area)} | ${cell(r.case)} | **${cell(r.outcome)}** | ${cell(r.detail)} |`);
const soakFile = join(dir, "soak.json");
if (existsSync(soakFile)) {
  const soak = JSON.parse(readFileSync(soakFile, "utf8"));
  lines.push("", `Soak (\`npm run soak\`, ${soak.at.slice(0, 10)}):`, "", "| figure | value |", "| --- | --- |");
  for (const [k, v] of Object.entries(soak.figures)) lines.push(`| ${cell(k)} | ${cell(v)} |`);
}
const newest = records.map((r) => r.at).sort().at(-1);
const table = `Produced by the suite (\`npm test\`, then \`npm run reliability-table\`), records of ${newest.slice(0, 10)}:\n\n${lines.join("\n")}`;
console.log(table);
const readme = join(root, "README.md");
const text = readFileSync(readme, "utf8");
const a = text.indexOf(START);
const b = text.indexOf(END);
if (a < 0 || b < a) {
  console.error(`README.md has no ${START} … ${END} markers: table not written`);
  process.exit(1);
}
writeFileSync(readme, text.slice(0, a + START.length) + "\n" + table + "\n" + text.slice(b));
console.log(`\nREADME.md updated (${records.length} rows)`);
