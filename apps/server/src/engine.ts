// Runs requests on the loaded repository: a request is checked against its
// model's config, scheduled (the sequence batcher for sequence models, else
// the version's queue and dynamic batcher) and counted as Triton counts it.
// What runs a batch is the model's backend (backends/); the engine knows
// none of them.
import type { Logger } from "pino";
import type { ExecRequest } from "./backends/index.js";
import { invalid } from "./errors.js";
import type { HostTensor } from "./host-tensors.js";
import type { EngineObserver } from "./metrics.js";
import type { ServedModel } from "./model.js";
import { Repository } from "./repository.js";

export interface EngineOptions {
  repository: string;
  /** ONNX Runtime intra-op threads per model instance. */
  threads: number;
  logger: Logger;
  /** Receives request and execution measurements (Prometheus metrics). */
  observer?: EngineObserver;
}

const now = () => performance.now();
const ms2ns = (ms: number) => ms * 1e6;

export class Engine {
  readonly repository: Repository;

  constructor(private readonly opts: EngineOptions) {
    this.repository = new Repository({ ...opts, infer: (name, version, req) => this.infer(name, version, req) });
  }

  /** The loaded models by name. */
  get models(): Map<string, ServedModel> {
    return this.repository.models;
  }

  /** Runs one request on a model; returns its outputs (without implicit-state outputs). */
  async infer(name: string, version: string | number | undefined, req: ExecRequest): Promise<{ model: ServedModel; version: number; outputs: Map<string, HostTensor> }> {
    const m = this.repository.model(name);
    const v = m.pick(version);
    const t0 = now();
    v.enter();
    try {
      const batch = m.validate(req.inputs);
      let r;
      if (m.batcher) {
        if (!req.sequence) throw invalid(`inference request to model '${m.name}' must specify a non-zero or non-empty correlation ID`);
        if (m.maxBatchSize > 0 && batch !== 1) throw invalid(`inference request to sequence model '${m.name}' must have batch size 1, got ${batch}`);
        r = await m.batcher.submit(v.queue, req.inputs, req.sequence);
      } else r = await v.queue.run(req.inputs, batch, req);
      const inferences = m.maxBatchSize > 0 ? batch : 1;
      v.stats.queue.add(r.queueNs);
      v.stats.compute_infer.add(r.inferNs);
      v.stats.inference_count += inferences;
      v.stats.success.add(ms2ns(now() - t0));
      v.stats.last_inference = Date.now();
      this.opts.observer?.request(m.name, v.version, true, (now() - t0) / 1000, inferences);
      return { model: m, version: v.version, outputs: m.reshapeOutputs(r.outputs) };
    } catch (e) {
      v.stats.fail.add(ms2ns(now() - t0));
      this.opts.observer?.request(m.name, v.version, false, (now() - t0) / 1000, 0);
      throw e;
    } finally {
      v.leave();
    }
  }

  close(): Promise<void> {
    return this.repository.close();
  }
}
