#!/usr/bin/env node
// `node apps/server/dist/main.js --repo DIR --port N [--host H] [--threads N]`
import { parseArgs } from "node:util";
import { pino } from "pino";
import { startServer } from "./server.js";

const { values } = parseArgs({
  options: {
    repo: { type: "string" },
    "model-repo": { type: "string" },
    port: { type: "string", default: "8001" },
    host: { type: "string", default: "0.0.0.0" },
    threads: { type: "string", default: "1" },
  },
});
const log = pino({ name: "timeslide-server" });
const repository = values.repo ?? values["model-repo"];
if (!repository) {
  process.stderr.write("usage: main.js --repo DIR [--port 8001] [--host 0.0.0.0] [--threads N]\n");
  process.exit(2);
}
try {
  const server = await startServer({ repository, host: values.host, port: Number(values.port), threads: Number(values.threads), logger: log });
  const stop = () => {
    log.info("shutting down");
    void server.close().then(() => process.exit(0));
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
} catch (e) {
  log.fatal({ err: (e as Error).message }, "server failed to start");
  process.exit(1);
}
