// The command's defaults, in a module of their own: the CLI reads them at
// start-up for its help text without loading fastify, gRPC and vega.

/** Loopback unless told otherwise: the page shows a cluster's layout, and has no login. */
export const DEFAULT_HOST = "127.0.0.1";
export const DEFAULT_PORT = 8080;
export const DEFAULT_REFRESH_MS = 2000;
