// Ensembles (platform ensemble): the steps run server-side in dependency
// order, each as a request to its model through the engine (its own
// scheduler, statistics and sequence slots); a step starts as soon as the
// tensors it reads exist. Tensors are whatever the steps make of them: any
// data type, any leading dimension (a step's output [S*W, n_ifo, D] feeds the
// next as it is), models with or without a batch dimension.
import { status } from "@grpc/grpc-js";
import { InferenceError } from "../errors.js";
import { cloneTensor, type HostTensor } from "../host-tensors.js";
import type { ServedModel } from "../model.js";
import type { Backend, ExecRequest, InstanceResult, LoadContext, ModelInstance } from "./backend.js";

class EnsembleInstance implements ModelInstance {
  // It only waits on its steps' models, which queue for themselves.
  readonly concurrency = Infinity;
  constructor(
    private readonly model: ServedModel,
    private readonly infer: LoadContext["infer"],
  ) {}

  async run(feeds: Map<string, HostTensor>, request: ExecRequest): Promise<InstanceResult> {
    const t0 = performance.now();
    const m = this.model;
    const steps = m.config.ensemble_scheduling?.step ?? [];
    const tensors = new Map(feeds);
    // Tensors read by several steps are copied for all but one (inputs move to worker threads).
    const uses = new Map<string, number>();
    for (const s of steps) for (const t of Object.values(s.input_map ?? {})) uses.set(t, (uses.get(t) ?? 0) + 1);
    for (const o of m.outputs) uses.set(o.name, (uses.get(o.name) ?? 0) + 1);
    const done = new Set<number>();
    while (done.size < steps.length) {
      const ready = steps.map((s, i) => ({ s, i })).filter(({ s, i }) => !done.has(i) && Object.values(s.input_map ?? {}).every((t) => tensors.has(t)));
      if (!ready.length) {
        const waiting = steps.filter((_, i) => !done.has(i)).map((s) => s.model_name);
        throw new InferenceError(status.INTERNAL, `ensemble '${m.name}': step(s) ${waiting.join(", ")} wait for tensors no step produces`);
      }
      await Promise.all(
        ready.map(async ({ s, i }) => {
          done.add(i);
          const inputs = new Map<string, HostTensor>();
          for (const [modelInput, tensor] of Object.entries(s.input_map ?? {})) {
            const t = tensors.get(tensor)!;
            const left = (uses.get(tensor) ?? 1) - 1;
            uses.set(tensor, left);
            inputs.set(modelInput, left > 0 ? cloneTensor(t) : t);
          }
          let r;
          try {
            r = await this.infer(s.model_name, s.model_version ?? -1, { inputs, sequence: request.sequence });
          } catch (e) {
            if (e instanceof InferenceError) throw new InferenceError(e.code, `in ensemble '${m.name}': ${e.message}`);
            throw e;
          }
          for (const [modelOutput, tensor] of Object.entries(s.output_map ?? {})) {
            const t = r.outputs.get(modelOutput);
            if (!t) throw new InferenceError(status.INTERNAL, `ensemble '${m.name}': model '${s.model_name}' gave no output '${modelOutput}'`);
            tensors.set(tensor, t);
          }
        }),
      );
    }
    const outputs = new Map<string, HostTensor>();
    for (const o of m.outputs) {
      const t = tensors.get(o.name);
      if (!t) throw new InferenceError(status.INTERNAL, `ensemble '${m.name}': no step produces output '${o.name}'`);
      outputs.set(o.name, t);
    }
    return { outputs, inferNs: (performance.now() - t0) * 1e6 };
  }

  async close(): Promise<void> {}
}

export const ensembleBackend: Backend = {
  async load({ model, notLoaded, infer }: LoadContext): Promise<ModelInstance[]> {
    for (const step of model.config.ensemble_scheduling?.step ?? []) {
      const why = notLoaded(step.model_name);
      if (why !== undefined) throw new Error(`ensemble step model '${step.model_name}' is not loaded${why ? ` (${why})` : ""}`);
    }
    return [new EnsembleInstance(model, infer)];
  },
};
