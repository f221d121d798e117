/** Durations and sizes as people write them, in flags, the config file and destination URLs (config and replay both read them). */
import { ConfigError } from './errors.js';

/** "500ms", "10s", "2m" or a plain number of milliseconds. */
export function parseDuration(flag: string, v: unknown): number {
  const s = String(v).trim();
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(s);
  if (!m) throw new ConfigError(`--${flag} must be a duration like 500ms, 10s or 2m, got ${JSON.stringify(v)}`);
  const n = parseFloat(m[1]) * ({ ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const)[(m[2] ?? 'ms') as 'ms'];
  return Math.round(n);
}

/** "64MiB", "512KiB", "1GiB", "100MB" or a plain number of bytes. */
export function parseBytes(flag: string, v: unknown): number {
  const s = String(v).trim();
  const m = /^(\d+(?:\.\d+)?)\s*(B|KB|KiB|MB|MiB|GB|GiB)?$/i.exec(s);
  if (!m) throw new ConfigError(`--${flag} must be a size like 4MiB or 512KiB, got ${JSON.stringify(v)}`);
  const unit = (m[2] ?? 'b').toLowerCase();
  const mult: Record<string, number> = { b: 1, kb: 1e3, kib: 1024, mb: 1e6, mib: 1024 ** 2, gb: 1e9, gib: 1024 ** 3 };
  return Math.round(parseFloat(m[1]) * mult[unit]);
}
