import type { Logger } from 'pino';

/**
 * Calls `emit` at most once per interval per key, with the number of calls suppressed since, so
 * something that can happen per request or per frame cannot flood the journal (or a thread's port).
 */
export function rateLimited<A extends unknown[]>(emit: (suppressed: number, ...args: A) => void, intervalMs = 10_000): (key: string, ...args: A) => void {
  const last = new Map<string, { at: number; suppressed: number }>();
  return (key, ...args) => {
    const now = Date.now();
    const e = last.get(key);
    if (e && now - e.at < intervalMs) {
      e.suppressed++;
      return;
    }
    emit(e?.suppressed ?? 0, ...args);
    last.set(key, { at: now, suppressed: 0 });
  };
}

/**
 * A warning that can fire per request (a destination refusing every connection) is logged at
 * most once per interval per key, with the number suppressed since.
 */
export function rateLimitedWarn(log: Logger, intervalMs = 10_000): (key: string, fields: Record<string, unknown>, msg: string) => void {
  return rateLimited((suppressed, fields: Record<string, unknown>, msg: string) => log.warn({ ...fields, suppressed }, msg), intervalMs);
}
