import { createServer, type Server } from "node:http";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/** The worker's Prometheus metrics, served as text on /metrics. */
export class WorkerMetrics {
  readonly registry = new Registry();
  readonly jobs = new Counter({ name: "timeslide_jobs_total", help: "jobs finished, by outcome", labelNames: ["campaign", "kind", "outcome"], registers: [this.registry] });
  readonly strain = new Counter({ name: "timeslide_strain_seconds_total", help: "seconds of strain read per detector", labelNames: ["campaign"], registers: [this.registry] });
  readonly livetime = new Counter({ name: "timeslide_livetime_seconds_total", help: "seconds of livetime analysed", labelNames: ["campaign", "kind"], registers: [this.registry] });
  readonly inferences = new Counter({ name: "timeslide_inferences_total", help: "detection-statistic samples computed", labelNames: ["campaign"], registers: [this.registry] });
  readonly rate = new Gauge({ name: "timeslide_inferences_per_second", help: "inferences per second over the last job", registers: [this.registry] });
  readonly duration = new Histogram({
    name: "timeslide_job_duration_seconds",
    help: "wall time of a job",
    buckets: [1, 5, 15, 60, 300, 900, 3600],
    registers: [this.registry],
  });
  readonly errors = new Counter({ name: "timeslide_job_errors_total", help: "job attempts that failed, by reason class", labelNames: ["campaign", "reason"], registers: [this.registry] });
  readonly active = new Gauge({ name: "timeslide_jobs_active", help: "jobs running in this worker", registers: [this.registry] });
  #server?: Server;

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  /** Serves /metrics on `port` (0: any free port); resolves to the port. */
  async listen(port: number, host = "0.0.0.0"): Promise<number> {
    this.#server = createServer(async (req, res) => {
      if (req.url?.startsWith("/metrics")) {
        res.setHeader("Content-Type", this.registry.contentType);
        res.end(await this.registry.metrics());
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
    if (this.#server) await new Promise((r) => this.#server!.close(() => r(undefined)));
  }
}
