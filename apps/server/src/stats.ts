// Per model version counters, as Triton's ModelStatistics reports them.

class Duration {
  count = 0;
  ns = 0;
  add(ns: number): void {
    this.count++;
    this.ns += ns;
  }
  toJSON() {
    return { count: this.count, ns: Math.round(this.ns) };
  }
}

export class VersionStats {
  inference_count = 0;
  execution_count = 0;
  last_inference = 0;
  success = new Duration();
  fail = new Duration();
  queue = new Duration();
  compute_input = new Duration();
  compute_infer = new Duration();
  compute_output = new Duration();
  readonly batch = new Map<number, { compute_input: Duration; compute_infer: Duration; compute_output: Duration }>();

  addExecution(batch: number, inputNs: number, inferNs: number, outputNs: number): void {
    this.execution_count++;
    let b = this.batch.get(batch);
    if (!b) this.batch.set(batch, (b = { compute_input: new Duration(), compute_infer: new Duration(), compute_output: new Duration() }));
    b.compute_input.add(inputNs);
    b.compute_infer.add(inferNs);
    b.compute_output.add(outputNs);
  }
}
