#!/usr/bin/env node
import { Command } from "commander";
import { registrations } from "./commands/index.js";

const program = new Command()
  .name("timeslide")
  .description("Time-slide background estimation for gravitational-wave searches")
  .version("0.1.0")
  .showHelpAfterError();
for (const register of registrations) register(program);
await program.parseAsync(process.argv);
