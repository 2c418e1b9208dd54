import type { Command } from "commander";

// Each command lives in its own file and registers itself here; main.ts
// stays a thin list. Add one import and one entry per command.
export const registrations: Array<(program: Command) => void> = [];
