import type { Logger } from 'pino';

/**
 * A warning that can fire per request (a destination refusing every connection) is logged at
 * most once per interval per key, with the number suppressed since, so it cannot flood the journal.
 */
export function rateLimitedWarn(log: Logger, intervalMs = 10_000): (key: string, fields: Record<string, unknown>, msg: string) => void {
  const last = new Map<string, { at: number; suppressed: number }>();
  return (key, fields, msg) => {
    const now = Date.now();
    const e = last.get(key);
    if (e && now - e.at < intervalMs) {
      e.suppressed++;
      return;
    }
    log.warn({ ...fields, suppressed: e?.suppressed ?? 0 }, msg);
    last.set(key, { at: now, suppressed: 0 });
  };
}
