import { ConfigError } from '../errors.js';
import { isToken } from '../http/grammar.js';

/**
 * --copy-header NAME: with --percentage above 100, each extra copy of a request carries
 * `NAME: 1`, `NAME: 2`, … so the test environment can tell copies apart. The original (send 0)
 * gets nothing added: it stays byte for byte what any replay is. A copy's own value replaces
 * any NAME production sent, so the count is never ambiguous.
 */
export interface CopyMarker {
  name: string;
  lower: string;
}

export function parseCopyMarker(s: string | undefined): CopyMarker | null {
  if (s === undefined || s === '') return null;
  if (!isToken(s)) throw new ConfigError(`--copy-header ${JSON.stringify(s)} is not a header name (a token, e.g. X-Mirror-Copy)`);
  return { name: s, lower: s.toLowerCase() };
}

/** The headers of copy `k` (k ≥ 1): `headers` without NAME, then `NAME: k`. A new array. */
export function copyHeaders(headers: readonly string[], marker: CopyMarker | null, k: number): string[] {
  if (!marker) return headers.slice();
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) if (headers[i].length !== marker.lower.length || headers[i].toLowerCase() !== marker.lower) out.push(headers[i], headers[i + 1]);
  out.push(marker.name, String(k));
  return out;
}
