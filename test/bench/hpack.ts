/**
 * HPACK and HTTP/2 request reading, one core. Input: the header blocks of real connections
 * (test/fixtures/h2/: node:http2, curl, nghttp), decoded in order by a fresh decoder per
 * connection (later blocks index the dynamic table the earlier ones filled). Baseline in the same
 * run: turning each block's bytes into one latin1 string (a lower bound: every byte touched once).
 * Then whole connections through H2RequestReader in 1448-byte pushes.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fragmentBounds, HEADERS, readFrameHeader, type FrameHeader } from '../../src/http2/frames.js';
import { HpackDecoder } from '../../src/http2/hpack.js';
import { H2RequestReader } from '../../src/http2/requests.js';
import { DEFAULT_HTTP_LIMITS } from '../../src/http/types.js';
import { fmt, printTable, QUICK, ratio, ROOT, timeLoop, type Row } from './util.js';

const MAX_MS = QUICK ? 300 : 2000;

function blocks(c2s: Buffer): Buffer[] {
  const out: Buffer[] = [];
  const h: FrameHeader = { length: 0, type: 0, flags: 0, streamId: 0 };
  for (let p = 24; p + 9 <= c2s.length; p += 9 + h.length) {
    readFrameHeader(c2s, p, h);
    if (h.type !== HEADERS) continue;
    const r = fragmentBounds(h, p + 9, p + 9 + h.length, c2s)!;
    out.push(c2s.subarray(r[0], r[1]));
  }
  return out;
}

export async function main(): Promise<void> {
  const rows: Row[] = [];
  for (const name of ['node', 'curl', 'nghttp']) {
    const c2s = fs.readFileSync(path.join(ROOT, 'test/fixtures/h2', `${name}.c2s.bin`));
    const bs = blocks(c2s);
    let fields = 0;
    const dec = timeLoop({ maxIters: 5_000_000, maxMs: MAX_MS, batch: 1000 }, () => {
      const d = new HpackDecoder();
      for (const b of bs) {
        const r = d.decode(b, 0, b.length, 65536);
        if (typeof r !== 'string') fields += r.fields.length;
      }
    });
    let chars = 0;
    const base = timeLoop({ maxIters: 5_000_000, maxMs: MAX_MS, batch: 1000 }, () => {
      for (const b of bs) chars += b.toString('latin1').length;
    });
    let reqs = 0;
    const conn = timeLoop({ maxIters: 1_000_000, maxMs: MAX_MS, batch: 100 }, () => {
      const r = new H2RequestReader({ onRequest: () => reqs++, onDrop: () => {} }, DEFAULT_HTTP_LIMITS);
      for (let p = 24; p < c2s.length; p += 1448) r.push(c2s, p, Math.min(1448, c2s.length - p));
      r.end();
    });
    const perBlock = dec.ns / (dec.iters * bs.length);
    const basePerBlock = base.ns / (base.iters * bs.length);
    rows.push({
      connection: name,
      blocks: bs.length,
      'bytes/block': fmt(bs.reduce((a, b) => a + b.length, 0) / bs.length, 0),
      'decode ns/block': fmt(perBlock, 0),
      'latin1 ns/block': fmt(basePerBlock, 0),
      'decode / latin1': ratio(perBlock, basePerBlock),
      'reader ns/request': fmt(conn.ns / reqs, 0),
    });
    if (fields === 0 || chars === 0) throw new Error('nothing decoded');
  }
  printTable('HPACK decode and H2RequestReader (one core)', rows, ['Blocks of each connection decoded in order by a fresh decoder; the reader row is whole connections in 1448-byte pushes.']);
}
