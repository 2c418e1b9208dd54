#!/usr/bin/env node
// The embedded inference server as a process:
//   node apps/server/dist/main.js --repo DIR [--port 8001] [--host 0.0.0.0] [--threads N]
//                                 [--metrics-port P] [--register REDIS_URL [--advertise HOST:PORT] [--ttl S]]
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { pino } from "pino";
import { startServer } from "./server.js";

const USAGE =
  "usage: main.js --repo DIR [--port 8001] [--host 0.0.0.0] [--threads N] [--metrics-port P] [--register REDIS_URL [--advertise HOST:PORT] [--ttl S]] [--tls-cert PEM --tls-key PEM]\n";

let values;
try {
  ({ values } = parseArgs({
    options: {
      repo: { type: "string" },
      "model-repo": { type: "string" },
      port: { type: "string", default: "8001" },
      host: { type: "string", default: "0.0.0.0" },
      threads: { type: "string", default: "1" },
      register: { type: "string" },
      advertise: { type: "string" },
      ttl: { type: "string", default: "15" },
      "metrics-port": { type: "string" },
      "tls-cert": { type: "string" },
      "tls-key": { type: "string" },
      help: { type: "boolean" },
    },
  }));
} catch (e) {
  process.stderr.write(`${(e as Error).message}\n${USAGE}`);
  process.exit(2);
}
const repository = values.repo ?? values["model-repo"];
if (values.help || !repository || Boolean(values["tls-cert"]) !== Boolean(values["tls-key"])) {
  process.stderr.write(USAGE);
  process.exit(values.help ? 0 : 2);
}
const log = pino({ name: "timeslide-server" });
try {
  const server = await startServer({
    repository,
    host: values.host,
    port: Number(values.port),
    threads: Number(values.threads),
    metricsPort: values["metrics-port"] !== undefined ? Number(values["metrics-port"]) : undefined,
    logger: log,
    tls: values["tls-cert"] && values["tls-key"] ? { certChain: readFileSync(values["tls-cert"]), privateKey: readFileSync(values["tls-key"]) } : undefined,
    register: values.register ? { redis: values.register, advertise: values.advertise, ttlSeconds: Number(values.ttl) } : undefined,
  });
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
