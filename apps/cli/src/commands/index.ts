import type { Command } from "commander";
import { registerPlan } from "./plan.js";
import { registerSubmit } from "./submit.js";
import { registerStatus } from "./status.js";
import { registerCancel } from "./cancel.js";
import { registerSynth } from "./synth.js";
import { registerFar } from "./far.js";
import { registerReport } from "./report.js";
import { registerWorker } from "./worker.js";
import { registerDemo } from "./demo.js";

// Each command lives in its own file and registers itself here; main.ts
// stays a thin list. Add one import and one entry per command.
export const registrations: Array<(program: Command) => void> = [registerDemo, registerPlan, registerSubmit, registerStatus, registerCancel, registerSynth, registerWorker, registerFar, registerReport];
import { registerServe } from "./serve.js";
registrations.push(registerServe);
import { registerModelRepo } from "./model-repo.js";
import { registerRegister } from "./register.js";
registrations.push(registerModelRepo, registerRegister);
import { registerDashboard } from "./dashboard.js";
registrations.push(registerDashboard);
