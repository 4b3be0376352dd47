/** Where sluice keeps state (ARCHITECTURE.md contract): SLUICE_HOME, else XDG state, else ~/.local/state. */
import { homedir } from "node:os";
import { join } from "node:path";

export function sluiceHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env.SLUICE_HOME) return env.SLUICE_HOME;
  if (env.XDG_STATE_HOME) return join(env.XDG_STATE_HOME, "sluice");
  return join(homedir(), ".local", "state", "sluice");
}

export function configPath(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string | null {
  return flag ?? (env.SLUICE_CONFIG || null);
}
