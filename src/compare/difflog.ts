import fs from 'node:fs';
import type { ResponseDigest } from '../http/response.js';
import type { CompareResult } from './compare.js';

/** Header values never written to the diff log, whatever the configuration. */
export const ALWAYS_REDACTED = ['authorization', 'proxy-authorization', 'cookie', 'set-cookie'];
const MAX_VALUE = 256;

export interface DiffLogOptions {
  /** Rotate when the file would pass this size: FILE → FILE.1 → … → FILE.<keep>. */
  maxBytes: number;
  keep: number;
  /** Lower-case header names whose values are written as "[redacted]" (added to ALWAYS_REDACTED). */
  redact: string[];
}

export interface DiffEntry {
  destination: string;
  method: string;
  /** The request path; the query is left out (it can carry tokens). */
  path: string;
  route: string;
  result: CompareResult;
  noise: boolean;
  /** For unpaired: which side had no usable answer, and why. */
  unpaired?: { side: 'production' | 'test'; reason: string };
  production: ResponseDigest | null;
  test: ResponseDigest | null;
  /** Differing header names (lower case). */
  headers: string[];
  /** Differing trailer names; absent when neither answer has trailers. */
  trailers?: string[];
  /** Set for a gRPC call (content-type application/grpc*): the method is its path. */
  grpc?: boolean;
}

/**
 * A gRPC answer's status: from its trailers, or from its headers when the server answered with
 * trailers only (a call that fails at once sends one HEADERS block with grpc-status in it).
 */
export function grpcStatus(d: ResponseDigest | null): { code: string | null; message: string | null } {
  if (!d) return { code: null, message: null };
  const t = d.trailers ?? [];
  const code = fieldValue(t, 'grpc-status') ?? fieldValue(d.headers, 'grpc-status');
  const raw = fieldValue(t, 'grpc-message') ?? fieldValue(d.headers, 'grpc-message');
  const message = raw === null ? null : percentDecoded(raw);
  return { code, message: message !== null && message.length > MAX_VALUE ? `${message.slice(0, MAX_VALUE)}…` : message };
}

/** grpc-message is percent-encoded UTF-8 (gRPC over HTTP/2, "Responses"); one that does not decode is shown as sent. */
function percentDecoded(v: string): string {
  try {
    return decodeURIComponent(v);
  } catch {
    return v;
  }
}

/** A field's values joined with ", " (RFC 9110 §5.3), or null when absent. */
function fieldValue(h: string[], name: string): string | null {
  let v: string | null = null;
  for (let i = 0; i < h.length; i += 2) if (h[i] === name) v = v === null ? h[i + 1] : `${v}, ${h[i + 1]}`;
  return v;
}

/**
 * The JSONL diff log: one line per difference (`kind: "diff"`) and, every few seconds, how many
 * comparisons of each result happened since the previous stats line (`kind: "stats"`), so the
 * report can compute rates from any set of rotated files. Request headers are never written;
 * response header values only for differing headers, redacted for credentials.
 *
 * Writes are synchronous appends of whole lines (page cache): a line is never half-written at
 * shutdown and rotation needs no flush. A failing write is counted, never thrown.
 */
export class DiffLog {
  private fd: number;
  private size: number;
  private readonly redact: Set<string>;
  failedWrites = 0;

  constructor(readonly path: string, private readonly opts: DiffLogOptions) {
    this.redact = new Set([...ALWAYS_REDACTED, ...opts.redact.map((h) => h.toLowerCase())]);
    this.fd = fs.openSync(path, 'a', 0o640);
    this.size = fs.fstatSync(this.fd).size;
  }

  diff(e: DiffEntry, snippetBytes: number): void {
    const values: Record<string, { production: string | null; test: string | null }> = {};
    for (const h of e.headers) values[h] = { production: this.value(e.production?.headers, h), test: this.value(e.test?.headers, h) };
    const side = (d: ResponseDigest | null) =>
      d && { status: d.status, length: d.bodyLength, sha256: d.bodySha256, ...(snippetBytes > 0 ? { snippet: d.bodySnippet.subarray(0, snippetBytes).toString('utf8') } : {}) };
    this.line({
      kind: 'diff',
      time: new Date().toISOString(),
      destination: e.destination,
      method: e.method,
      path: e.path,
      route: e.route,
      result: e.result,
      noise: e.noise,
      ...(e.unpaired ? { unpaired: e.unpaired } : {}),
      status: { production: e.production?.status ?? null, test: e.test?.status ?? null },
      headers: e.headers,
      headerValues: values,
      ...(e.trailers ? this.trailerFields(e, e.trailers) : {}),
      ...(e.grpc ? { grpc: { method: e.path, production: grpcStatus(e.production), test: grpcStatus(e.test) } } : {}),
      body: { production: side(e.production), test: side(e.test) },
    });
  }

  private trailerFields(e: DiffEntry, names: string[]): { trailers: string[]; trailerValues: Record<string, { production: string | null; test: string | null }> } {
    const values: Record<string, { production: string | null; test: string | null }> = {};
    for (const h of names) values[h] = { production: this.value(e.production?.trailers, h), test: this.value(e.test?.trailers, h) };
    return { trailers: names, trailerValues: values };
  }

  /** Per destination: comparisons by result since the last stats line, and how many were noise. */
  stats(counts: Record<string, Record<string, number>>, noise: Record<string, Record<string, number>>): void {
    this.line({ kind: 'stats', time: new Date().toISOString(), counts, noise });
  }

  close(): void {
    try {
      fs.closeSync(this.fd);
    } catch {
      // already closed
    }
  }

  private value(fields: string[] | undefined, name: string): string | null {
    const v = fields ? fieldValue(fields, name) : null;
    if (v === null) return null;
    if (this.redact.has(name)) return '[redacted]';
    return v.length > MAX_VALUE ? `${v.slice(0, MAX_VALUE)}…` : v;
  }

  private line(o: unknown): void {
    const s = `${JSON.stringify(o)}\n`;
    const n = Buffer.byteLength(s);
    try {
      if (this.size > 0 && this.size + n > this.opts.maxBytes) this.rotate();
      fs.writeSync(this.fd, s);
      this.size += n;
    } catch {
      this.failedWrites++;
    }
  }

  private rotate(): void {
    fs.closeSync(this.fd);
    try {
      for (let i = Math.max(1, this.opts.keep) - 1; i >= 1; i--) {
        try {
          fs.renameSync(`${this.path}.${i}`, `${this.path}.${i + 1}`);
        } catch {
          // that generation does not exist yet
        }
      }
      fs.renameSync(this.path, `${this.path}.1`);
    } finally {
      // Whatever happened, keep a file open to write to.
      this.fd = fs.openSync(this.path, 'a', 0o640);
      this.size = fs.fstatSync(this.fd).size;
    }
  }
}
