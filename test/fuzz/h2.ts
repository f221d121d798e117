/**
 * Fuzzing the HTTP/2 readers with fast-check. Seeds are real connections (test/fixtures/h2/, from
 * node:http2, curl and nghttp); inputs are of three kinds:
 * - losses: byte ranges cut out and announced as gaps (as reassembly does), taints, an early end.
 *   Oracle: every request emitted is one the unmutated connection carried (same stream, fields,
 *   body, trailers), never twice: a loss never yields a partial or altered request.
 * - mutations: bit flips, random bytes, deletions, duplications, splices of the seed (test/fuzz/fuzz.ts).
 * - frames: random frames (any type, flags, stream, payload: random bytes or real header blocks)
 *   inserted at a frame boundary of the seed.
 * For every input: no exception, held bytes within the bounds, and the same requests and drop
 * counts whatever the cut into pushes (two different cuts). The answer reader gets the same
 * treatment with the server's side. Used by fuzz.test.ts (short) and run.ts (10^5 inputs).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { H2AnswerReader } from '../../src/http2/answers.js';
import { DEFAULT_MAX_FRAME_SIZE } from '../../src/http2/frames.js';
import { DEFAULT_MAX_TABLE_SIZE } from '../../src/http2/hpack.js';
import { H2RequestReader } from '../../src/http2/requests.js';
import type { HttpParserLimits, HttpRequest } from '../../src/http/types.js';
import { mutate, Rng, type FuzzReport } from './fuzz.js';

const DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/h2');
const LIMITS: HttpParserLimits = { maxRequestLineBytes: 256, maxHeaderBytes: 4096, maxHeaderCount: 40, maxBodyBytes: 4096 };
/** What a reader may hold: a partial frame, a header block, the HPACK table, bodies across streams. */
const BOUND = DEFAULT_MAX_FRAME_SIZE + LIMITS.maxHeaderBytes + DEFAULT_MAX_TABLE_SIZE + 2 * LIMITS.maxBodyBytes + 64;

export interface H2Seed {
  name: string;
  /** Client to server after the preface. */
  c2s: Buffer;
  s2c: Buffer;
  /** The requests the unmutated connection carries, as keys. */
  requests: Set<string>;
}

const key = (r: HttpRequest): string =>
  JSON.stringify([r.h2?.streamId, r.method, r.target, r.authority, r.headers, r.body.toString('latin1'), r.trailers]);

interface Run { requests: string[]; drops: number; buffered: number }

type Op = { push: Buffer } | { gap: number } | { taint: true };

function runRequests(ops: Op[], seed: number): Run {
  const out: Run = { requests: [], drops: 0, buffered: 0 };
  const r = new H2RequestReader({ onRequest: (q) => out.requests.push(key(q)), onDrop: (_r, n) => (out.drops += n) }, LIMITS);
  const rng = new Rng(seed);
  for (const op of ops) {
    if ('gap' in op) r.gap(op.gap, 'lost');
    else if ('taint' in op) r.taint('overlap_conflict');
    else {
      for (let p = 0; p < op.push.length;) {
        const n = 1 + rng.int(rng.int(2) ? 16 : 2000);
        const piece = Buffer.from(op.push.subarray(p, p + n));
        r.push(piece, 0, piece.length);
        piece.fill(0x5a);
        p += n;
        out.buffered = Math.max(out.buffered, r.bufferedBytes);
      }
    }
  }
  r.end();
  return out;
}

export function h2Seeds(): H2Seed[] {
  return ['node', 'curl', 'nghttp'].map((name) => {
    const c2s = fs.readFileSync(path.join(DIR, `${name}.c2s.bin`)).subarray(24);
    const base = runRequests([{ push: c2s }], 1);
    return { name, c2s, s2c: fs.readFileSync(path.join(DIR, `${name}.s2c.bin`)), requests: new Set(base.requests) };
  });
}

const frameArb = fc.record({
  type: fc.nat(12),
  flags: fc.nat(255),
  stream: fc.oneof(fc.constant(0), fc.nat(12), fc.nat(0x7fffffff)),
  payload: fc.uint8Array({ maxLength: 80 }),
  realBlock: fc.boolean(),
});

function frameBytes(f: { type: number; flags: number; stream: number; payload: Uint8Array; realBlock: boolean }): Buffer {
  // A real header block (RFC 7541 C.4.1, Huffman) sometimes, so HEADERS frames decode.
  const p = f.realBlock ? Buffer.from('828684418cf1e3c2e5f23a6ba0ab90f4ff', 'hex') : Buffer.from(f.payload);
  const h = Buffer.alloc(9);
  h.writeUIntBE(p.length, 0, 3);
  h[3] = f.type;
  h[4] = f.flags;
  h.writeUInt32BE(f.stream >>> 0, 5);
  return Buffer.concat([h, p]);
}

/** Frame boundaries of a well-formed stream. */
function boundaries(b: Buffer): number[] {
  const out = [0];
  for (let p = 0; p + 9 <= b.length;) {
    p += 9 + b.readUIntBE(p, 3);
    if (p <= b.length) out.push(p);
  }
  return out;
}

const inputArb = (seeds: number) => fc.record({
  seed: fc.nat(seeds - 1),
  kind: fc.constantFrom('loss', 'mutate', 'frames'),
  cuts: fc.array(fc.record({ at: fc.double({ min: 0, max: 1, noNaN: true }), len: fc.nat(300), what: fc.constantFrom('gap', 'taint', 'end') }), { minLength: 1, maxLength: 3 }),
  frames: fc.array(frameArb, { maxLength: 6 }),
  rng: fc.integer(),
});

interface Input {
  seed: number;
  kind: 'loss' | 'mutate' | 'frames';
  cuts: Array<{ at: number; len: number; what: 'gap' | 'taint' | 'end' }>;
  frames: Array<{ type: number; flags: number; stream: number; payload: Uint8Array; realBlock: boolean }>;
  rng: number;
}

function opsFor(s: H2Seed, input: Input, seeds: H2Seed[]): { ops: Op[]; loss: boolean } {
  const b = s.c2s;
  if (input.kind === 'mutate') {
    const r = new Rng(input.rng);
    return { ops: [{ push: mutate(r, b, seeds[r.int(seeds.length)].c2s) }], loss: false };
  }
  if (input.kind === 'frames') {
    const bs = boundaries(b);
    const at = bs[Math.floor(input.cuts[0].at * bs.length) % bs.length];
    return { ops: [{ push: Buffer.concat([b.subarray(0, at), ...input.frames.map(frameBytes), b.subarray(at)]) }], loss: false };
  }
  const ops: Op[] = [];
  let p = 0;
  for (const c of [...input.cuts].sort((x, y) => x.at - y.at)) {
    const at = Math.max(p, Math.floor(c.at * b.length));
    ops.push({ push: b.subarray(p, at) });
    if (c.what === 'end') return { ops, loss: true };
    if (c.what === 'taint') {
      ops.push({ taint: true });
      p = at;
    } else {
      const n = Math.min(1 + c.len, b.length - at);
      if (n > 0) ops.push({ gap: n });
      p = at + Math.max(n, 0);
    }
  }
  ops.push({ push: b.subarray(p) });
  return { ops, loss: true };
}

/** The request reader: `count` inputs; throws with the counterexample on a failure. */
export function fuzzH2Requests(count: number, seed: number): FuzzReport {
  const seeds = h2Seeds();
  let accepted = 0;
  let dropped = 0;
  fc.assert(fc.property(inputArb(seeds.length), (input) => {
    const s = seeds[input.seed];
    const { ops, loss } = opsFor(s, input, seeds);
    const a = runRequests(ops, input.rng);
    const b = runRequests(ops, input.rng ^ 0x5bd1e995);
    accepted += a.requests.length;
    dropped += a.drops;
    if (a.buffered > BOUND || b.buffered > BOUND) throw new Error(`held ${Math.max(a.buffered, b.buffered)} > ${BOUND}`);
    if (JSON.stringify(a) !== JSON.stringify({ ...b, buffered: a.buffered })) throw new Error('the cut into pushes changed the outcome');
    if (new Set(a.requests).size !== a.requests.length) throw new Error('a request emitted twice');
    if (loss) for (const r of a.requests) if (!s.requests.has(r)) throw new Error(`emitted a request the connection did not carry: ${r.slice(0, 200)}`);
  }), { numRuns: count, seed, endOnFailure: true });
  return { inputs: count, accepted, dropped };
}

/** The answer reader on the server's side: mutated, cut anywhere; no exception, bounded, cut-independent. */
export function fuzzH2Answers(count: number, seed: number): FuzzReport {
  const seeds = h2Seeds();
  let accepted = 0;
  let dropped = 0;
  const run = (bytes: Buffer, rs: number): string[] => {
    const ev: string[] = [];
    // Body pieces follow the cuts: kept per stream, reported with its end.
    const bodies = new Map<number, string>();
    const a = new H2AnswerReader({
      onHead: (id, st, f) => ev.push(`h${id}:${st}:${f.join(',')}`),
      onBody: (id, b, s, e) => bodies.set(id, (bodies.get(id) ?? '') + b.toString('latin1', s, e)),
      onEnd: (id, t) => ev.push(`e${id}:${bodies.get(id) ?? ''}:${t.join(',')}`),
      onLost: (id, reason) => ev.push(`l${id}:${reason}`),
    }, LIMITS);
    const rng = new Rng(rs);
    for (let p = 0; p < bytes.length;) {
      const n = 1 + rng.int(300);
      a.push(bytes, p, Math.min(n, bytes.length - p));
      p += n;
      if (a.bufferedBytes > BOUND) throw new Error(`answers hold ${a.bufferedBytes}`);
    }
    a.end();
    return ev;
  };
  fc.assert(fc.property(fc.nat(seeds.length - 1), fc.integer(), (si, rs) => {
    const r = new Rng(rs);
    const bytes = r.int(4) === 0 ? seeds[si].s2c : mutate(r, seeds[si].s2c, seeds[r.int(seeds.length)].s2c);
    const x = run(bytes, rs);
    accepted += x.filter((e) => e.startsWith('e')).length;
    dropped += x.filter((e) => e.startsWith('l')).length;
    if (JSON.stringify(x) !== JSON.stringify(run(bytes, rs ^ 0x1234567))) throw new Error('the cut into pushes changed the answers');
  }), { numRuns: count, seed, endOnFailure: true });
  return { inputs: count, accepted, dropped };
}
