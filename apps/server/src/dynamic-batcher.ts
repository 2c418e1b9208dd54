// The queue of one model version in front of its instances, and Triton's
// dynamic batcher: each instance gets the oldest request; with
// `dynamic_batching` (and max_batch_size > 0) the compatible requests queued
// behind it join the run, up to max_batch_size. It knows no backend: an
// instance is anything that runs a batch (backends/backend.ts).
import type { ExecRequest, ModelInstance } from "./backends/backend.js";
import { concatBatch, splitBatch, type HostTensor } from "./host-tensors.js";
import type { EngineObserver } from "./metrics.js";
import type { RunResult } from "./sequence-batcher.js";
import type { VersionStats } from "./stats.js";

/** What the queue needs to know of its model. */
export interface BatchingModel {
  readonly name: string;
  readonly maxBatchSize: number;
  readonly dynamicBatching: boolean;
  readonly observer?: EngineObserver;
}

interface Job {
  feeds: Map<string, HostTensor>;
  batch: number;
  request: ExecRequest;
  enqueued: number;
  resolve: (r: RunResult) => void;
  reject: (e: Error) => void;
}

const now = () => performance.now();
const ms2ns = (ms: number) => ms * 1e6;
const queuedBatch = (q: Job[]) => q.reduce((a, j) => a + j.batch, 0);

export class DynamicBatcher {
  private readonly queue: Job[] = [];
  /** runs handed to each instance and not yet answered */
  private readonly running: number[];

  constructor(
    private readonly instances: ModelInstance[],
    private readonly model: BatchingModel,
    private readonly version: { readonly version: number; readonly stats: VersionStats },
  ) {
    this.running = instances.map(() => 0);
  }

  /** Queues a batch of `batch` rows; resolves with its outputs, queue and compute time. */
  run(feeds: Map<string, HostTensor>, batch: number, request: ExecRequest = { inputs: feeds }): Promise<RunResult> {
    return new Promise((resolve, reject) => {
      this.queue.push({ feeds, batch, request, enqueued: now(), resolve, reject });
      this.pump();
    });
  }

  // The least busy instance below its concurrency takes the oldest request
  // (and, batching, those behind it). An instance's second run waits in its
  // own queue, so it starts the moment the first ends instead of after a
  // round trip through this event loop, busy with gRPC; with dynamic
  // batching that second run waits for a full batch, so requests still gather.
  private pump(): void {
    while (this.queue.length) {
      let k = -1;
      for (let i = 0; i < this.instances.length; i++) {
        if (this.running[i] < this.instances[i].concurrency && (k < 0 || this.running[i] < this.running[k])) k = i;
      }
      if (k < 0) return;
      if (this.running[k] > 0 && this.model.dynamicBatching && queuedBatch(this.queue) < this.model.maxBatchSize) return;
      void this.execute(k, this.take());
    }
  }

  private take(): Job[] {
    const first = this.queue.shift()!;
    const jobs = [first];
    if (!this.model.dynamicBatching) return jobs;
    let total = first.batch;
    for (let i = 0; i < this.queue.length && total < this.model.maxBatchSize; ) {
      const j = this.queue[i];
      if (total + j.batch <= this.model.maxBatchSize && compatible(first.feeds, j.feeds)) {
        jobs.push(j);
        total += j.batch;
        this.queue.splice(i, 1);
      } else i++;
    }
    return jobs;
  }

  private async execute(k: number, jobs: Job[]): Promise<void> {
    this.running[k]++;
    const started = now();
    try {
      let feeds = jobs[0].feeds;
      const sizes = jobs.map((j) => j.batch);
      const t0 = now();
      if (jobs.length > 1) {
        feeds = new Map();
        for (const name of jobs[0].feeds.keys()) feeds.set(name, concatBatch(jobs.map((j) => j.feeds.get(name)!)));
      }
      const t1 = now();
      const r = await this.instances[k].run(feeds, jobs[0].request);
      const t2 = now();
      const parts = jobs.length > 1 ? splitOutputs(r.outputs, sizes) : [r.outputs];
      const t3 = now();
      const total = sizes.reduce((a, b) => a + b, 0);
      this.version.stats.addExecution(total, ms2ns(t1 - t0), r.inferNs, ms2ns(t3 - t2));
      this.model.observer?.execution(this.model.name, this.version.version, total, jobs.map((j) => (started - j.enqueued) / 1000), r.inferNs / 1e9);
      jobs.forEach((j, i) => j.resolve({ outputs: parts[i], inferNs: r.inferNs, queueNs: ms2ns(started - j.enqueued) }));
    } catch (e) {
      for (const j of jobs) j.reject(e as Error);
    } finally {
      this.running[k]--;
      this.pump();
    }
  }
}

function compatible(a: Map<string, HostTensor>, b: Map<string, HostTensor>): boolean {
  if (a.size !== b.size) return false;
  for (const [name, t] of a) {
    const u = b.get(name);
    if (!u || u.datatype !== t.datatype || u.shape.length !== t.shape.length) return false;
    for (let i = 1; i < t.shape.length; i++) if (u.shape[i] !== t.shape[i]) return false;
  }
  return true;
}

function splitOutputs(outputs: Map<string, HostTensor>, sizes: number[]): Map<string, HostTensor>[] {
  const parts = sizes.map(() => new Map<string, HostTensor>());
  for (const [name, t] of outputs) splitBatch(t, sizes).forEach((p, i) => parts[i].set(name, p));
  return parts;
}
