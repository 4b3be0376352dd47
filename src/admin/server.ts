/**
 * Binds the admin app to a socket. Kept apart from app.ts so the app is tested with
 * `app.request()` and the listener with real sockets.
 */

/** Anything with a fetch handler: a Hono app, in practice. */
export interface FetchApp {
  fetch(request: Request): Response | Promise<Response>;
}

export interface AdminServer {
  readonly hostname: string;
  /** The bound port; the real one when 0 was asked for. */
  readonly port: number;
  /** Stops listening and closes open connections. */
  stop(): Promise<void>;
}

// The admin API takes tiny JSON bodies only; refuse big ones before they are buffered.
const MAX_REQUEST_BODY_BYTES = 64 * 1024;

export function startAdminServer(options: { hostname: string; port: number; app: FetchApp }): AdminServer {
  const { app } = options;
  const server = Bun.serve({
    hostname: options.hostname,
    port: options.port,
    maxRequestBodySize: MAX_REQUEST_BODY_BYTES,
    // Called with the request only: the app reads no server internals.
    fetch: (request) => app.fetch(request),
  });
  const port = server.port;
  if (port === undefined) {
    void server.stop(true);
    throw new Error(`admin server on ${options.hostname} did not report a port`);
  }
  return {
    hostname: options.hostname,
    port,
    async stop() {
      await server.stop(true);
    },
  };
}
