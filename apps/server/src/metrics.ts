import { createServer, type Server } from "node:http";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/** What the engine reports; the Prometheus implementation is below. */
export interface EngineObserver {
  request(model: string, version: number, ok: boolean, seconds: number, inferences: number): void;
  execution(model: string, version: number, batch: number, queueSeconds: number[], computeSeconds: number): void;
}

const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];
const TIME_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/** The server's Prometheus metrics (requests, batch sizes, queue and compute time), served on /metrics. */
export class ServerMetrics implements EngineObserver {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: "timeslide_server_requests_total",
    help: "inference requests answered, by model, version and outcome",
    labelNames: ["model", "version", "outcome"],
    registers: [this.registry],
  });
  readonly inferences = new Counter({
    name: "timeslide_server_inferences_total",
    help: "inferences (batch elements) computed",
    labelNames: ["model", "version"],
    registers: [this.registry],
  });
  readonly batchSize = new Histogram({
    name: "timeslide_server_batch_size",
    help: "batch size of each execution (after dynamic batching; an ensemble's executions are its requests)",
    labelNames: ["model"],
    buckets: BATCH_BUCKETS,
    registers: [this.registry],
  });
  readonly queue = new Histogram({
    name: "timeslide_server_queue_seconds",
    help: "time a request waited for a model instance",
    labelNames: ["model"],
    buckets: TIME_BUCKETS,
    registers: [this.registry],
  });
  readonly compute = new Histogram({
    name: "timeslide_server_compute_seconds",
    help: "compute time per execution (a model instance's run; an ensemble's: all its steps)",
    labelNames: ["model"],
    buckets: TIME_BUCKETS,
    registers: [this.registry],
  });
  readonly latency = new Histogram({
    name: "timeslide_server_request_seconds",
    help: "request time inside the server, decode to answer",
    labelNames: ["model"],
    buckets: TIME_BUCKETS,
    registers: [this.registry],
  });
  readonly sequences = new Gauge({
    name: "timeslide_server_sequences_active",
    help: "sequences holding a sequence slot (and implicit state)",
    labelNames: ["model"],
    registers: [this.registry],
  });
  readonly sequencesWaiting = new Gauge({
    name: "timeslide_server_sequences_waiting",
    help: "sequences waiting in the sequence batcher's backlog for a free slot",
    labelNames: ["model"],
    registers: [this.registry],
  });
  #server?: Server;

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  request(model: string, version: number, ok: boolean, seconds: number, inferences: number): void {
    this.requests.inc({ model, version: String(version), outcome: ok ? "success" : "failure" });
    if (ok) this.inferences.inc({ model, version: String(version) }, inferences);
    this.latency.observe({ model }, seconds);
  }

  execution(model: string, _version: number, batch: number, queueSeconds: number[], computeSeconds: number): void {
    this.batchSize.observe({ model }, batch);
    this.compute.observe({ model }, computeSeconds);
    for (const q of queueSeconds) this.queue.observe({ model }, q);
  }

  /** Serves /metrics on `port` (0: any free port); `collect` runs before each scrape. Resolves to the port. */
  async listen(port: number, host: string, collect: () => void): Promise<number> {
    this.#server = createServer((req, res) => {
      if (req.url?.startsWith("/metrics")) {
        collect();
        this.registry.metrics().then(
          (text) => {
            res.setHeader("Content-Type", this.registry.contentType);
            res.end(text);
          },
          (e: Error) => {
            res.statusCode = 500;
            res.end(`${e.message}\n`);
          },
        );
      } else {
        res.statusCode = 404;
        res.end("see /metrics\n");
      }
    });
    await new Promise<void>((ok, fail) => this.#server!.once("error", fail).listen(port, host, () => ok()));
    const a = this.#server.address();
    return typeof a === "object" && a ? a.port : port;
  }

  async close(): Promise<void> {
    const s = this.#server;
    if (s) await new Promise((r) => s.close(() => r(undefined)));
  }
}
