/** Usage errors exit 2 (README "Exit codes"); they are not failures of sluice itself. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;
