/**
 * Stopping long work cleanly. SIGINT (Ctrl-C), SIGTERM, SIGHUP (a dropped SSH session) and a closed output
 * pipe (`strata train | head`, which Node reports as `EPIPE` on stdout) all ask the running command to
 * finish its step, write a checkpoint and exit with the conventional code 128 + signal number; a second
 * signal exits at once.
 *
 * @module
 */

/** Exit code for each way of being stopped: 128 + the signal's number (a closed pipe is SIGPIPE's 141). */
export const STOP_EXIT_CODES = { SIGHUP: 129, SIGINT: 130, SIGPIPE: 141, SIGTERM: 143 } as const;

/** Why a command was asked to stop. */
export type StopReason = keyof typeof STOP_EXIT_CODES;

type StopListener = (reason: StopReason) => void;
const listeners = new Set<StopListener>();
let guarded = false;

/** Errors of a standard stream that mean "the reader went away" (pipe closed, terminal hung up). */
const CLOSED_CODES = new Set(['EPIPE', 'EIO', 'ECONNRESET', 'ERR_STREAM_DESTROYED']);

/**
 * Installs the handlers that keep a closed stdout/stderr from crashing the CLI: the error is turned into a
 * `SIGPIPE` stop request for the command that listens ({@link onStop}), and commands that do not listen
 * exit quietly with code 141. Idempotent.
 */
export function guardOutputStreams(): void {
  if (guarded) return;
  guarded = true;
  const closed = new Set<NodeJS.WriteStream>();
  const guard = (stream: NodeJS.WriteStream) =>
    stream.on('error', (err: Error & { code?: string }) => {
      if (!CLOSED_CODES.has(err.code ?? '')) throw err;
      // Every write pending when the pipe closed fails too: only the first error is news.
      if (closed.has(stream)) return;
      closed.add(stream);
      if (listeners.size === 0) process.exit(STOP_EXIT_CODES.SIGPIPE);
      for (const l of [...listeners]) l('SIGPIPE');
    });
  guard(process.stdout);
  guard(process.stderr);
}

/**
 * Calls `listener` on SIGINT, SIGTERM, SIGHUP and a closed output pipe until the returned function is
 * called. While any listener is registered, these no longer terminate the process by themselves.
 */
export function onStop(listener: StopListener): () => void {
  guardOutputStreams();
  const handlers = (['SIGINT', 'SIGTERM', 'SIGHUP'] as const).map((sig) => {
    const h = () => listener(sig);
    process.on(sig, h);
    return [sig, h] as const;
  });
  listeners.add(listener);
  return () => {
    for (const [sig, h] of handlers) process.off(sig, h);
    listeners.delete(listener);
  };
}
