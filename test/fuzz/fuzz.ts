/**
 * Fuzzing the two stages that read hostile bytes: the frame decoder (plus reassembly and the
 * parser behind it) and the HTTP parser. Inputs are random bytes and mutations of seeds taken
 * from the fixtures: the frames of test/fixtures/http-mix.pcap and the streams of
 * test/http/corpus.ts. A seeded PRNG makes every run reproducible from its seed.
 *
 * Used by fuzz.test.ts (a short run in `npm test`) and run.ts (`npm run fuzz`, the long run).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Decoder } from '../../src/decode/decoder.js';
import { DEFAULT_FRAGMENT_OPTIONS } from '../../src/decode/fragments.js';
import { HttpRequestParser } from '../../src/http/parser.js';
import { DEFAULT_HTTP_LIMITS, type HttpParserLimits } from '../../src/http/types.js';
import { FlowTable } from '../../src/reassemble/table.js';
import { CASES, wireBytes } from '../http/corpus.js';
import { gwlbMirrorFrame } from '../fixtures/geneve.js';
import { vxlanFrame, vxlanPayload } from '../fixtures/vxlan.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** dist/test/fuzz → test/fixtures in the source tree. */
const PCAP = path.resolve(HERE, '../../../test/fixtures/http-mix.pcap');

export class Rng {
  private x: number;
  constructor(seed: number) {
    this.x = seed >>> 0 || 0x9e3779b9;
  }
  next(): number {
    let x = this.x;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.x = x >>> 0;
    return this.x;
  }
  int(n: number): number {
    return n <= 0 ? 0 : this.next() % n;
  }
  pick<T>(a: readonly T[]): T {
    return a[this.int(a.length)];
  }
}

/** Frames of a classic pcap file (either byte order). */
export function pcapFrames(file = PCAP): Buffer[] {
  const b = fs.readFileSync(file);
  const le = b.readUInt32LE(0) === 0xa1b2c3d4;
  const u32 = (o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  const out: Buffer[] = [];
  for (let o = 24; o + 16 <= b.length; ) {
    const cap = u32(o + 8);
    out.push(b.subarray(o + 16, o + 16 + cap));
    o += 16 + cap;
  }
  return out;
}

export function httpSeeds(): Buffer[] {
  return CASES.map(wireBytes);
}

const INTERESTING = [0, 1, 0x7f, 0x80, 0xff, 13, 10, 32, 9, 58, 59, 48, 0x45, 0x06, 0x11, 0x2c, 0x86, 0xdd, 0x81, 0x08];

/** One to four stacked mutations of `seed` (sometimes spliced with `other`). */
export function mutate(r: Rng, seed: Buffer, other: Buffer): Buffer {
  let b = Buffer.from(seed);
  const rounds = 1 + r.int(4);
  for (let k = 0; k < rounds; k++) {
    const n = b.length;
    switch (r.int(9)) {
      case 0: // bit flip
        if (n) b[r.int(n)] ^= 1 << r.int(8);
        break;
      case 1: // interesting byte
        if (n) b[r.int(n)] = r.pick(INTERESTING);
        break;
      case 2: // random byte
        if (n) b[r.int(n)] = r.int(256);
        break;
      case 3: { // delete a range
        const a = r.int(n + 1);
        b = Buffer.concat([b.subarray(0, a), b.subarray(Math.min(n, a + 1 + r.int(16)))]);
        break;
      }
      case 4: { // insert random bytes
        const a = r.int(n + 1);
        const ins = Buffer.alloc(1 + r.int(16));
        for (let i = 0; i < ins.length; i++) ins[i] = r.int(4) === 0 ? r.pick(INTERESTING) : r.int(256);
        b = Buffer.concat([b.subarray(0, a), ins, b.subarray(a)]);
        break;
      }
      case 5: { // duplicate a range
        const a = r.int(n + 1);
        const e = Math.min(n, a + 1 + r.int(64));
        b = Buffer.concat([b.subarray(0, e), b.subarray(a, e), b.subarray(e)]);
        break;
      }
      case 6: // truncate
        b = b.subarray(0, r.int(n + 1));
        break;
      case 7: { // splice with another seed
        const a = r.int(n + 1);
        const c = r.int(other.length + 1);
        b = Buffer.concat([b.subarray(0, a), other.subarray(c)]);
        break;
      }
      default: { // big-endian 16-bit field set to an edge value (lengths, ports, offsets)
        if (n >= 2) {
          const a = r.int(n - 1);
          b.writeUInt16BE(r.pick([0, 1, 0x7fff, 0x8000, 0xffff, n, n - a, 20, 40, 80]) & 0xffff, a);
        }
      }
    }
  }
  return b;
}

function randomBytes(r: Rng, max: number): Buffer {
  const b = Buffer.alloc(r.int(max + 1));
  for (let i = 0; i < b.length; i++) b[i] = r.int(256);
  return b;
}

export interface FuzzReport {
  inputs: number;
  /** For the decoder: frames that decoded to a TCP segment; for the parser: requests emitted. */
  accepted: number;
  dropped: number;
}

/** The pcap's frames as an adapter's own interface gets them: in VXLAN, and in GWLB's GENEVE around VXLAN. */
export function tunnelFrames(): Buffer[] {
  return pcapFrames().flatMap((inner, i) => [vxlanFrame({ vni: i % 3, inner }), gwlbMirrorFrame(vxlanPayload(7, inner))]);
}

/**
 * Decoder (and FlowTable + parser behind it): must never throw, every packet it returns must
 * point inside the captured bytes, and reassembly must stay under its caps. `encap`: the frames
 * are tunnels, decapsulated in user space (--encap-interface).
 */
export function fuzzDecoder(count: number, seed: number, opts: { encap?: boolean } = {}): FuzzReport {
  const r = new Rng(seed);
  const seeds = opts.encap ? tunnelFrames() : pcapFrames();
  const dec = new Decoder(80, {}, opts.encap ? { vnis: [] } : null);
  dec.sweep(0);
  let dropped = 0;
  const limits: HttpParserLimits = { maxRequestLineBytes: 256, maxHeaderBytes: 1024, maxHeaderCount: 20, maxBodyBytes: 4096 };
  const memcap = 64 * 1024;
  const table = new FlowTable({ port: 80, memcapBytes: memcap, maxFlowBufferBytes: 16 * 1024, maxFlows: 500, holeTimeoutMs: 50 }, (_, midstream) =>
    new HttpRequestParser({ onRequest: () => {}, onDrop: (_r, n) => (dropped += n) }, limits, { midstream }),
  );
  let accepted = 0;
  const scratch = Buffer.alloc(70_000);
  for (let i = 0; i < count; i++) {
    const input = r.int(10) === 0 ? randomBytes(r, 200) : mutate(r, r.pick(seeds), r.pick(seeds));
    // At an odd offset in a bigger buffer, like a ring block; sometimes cut short of the wire length.
    const off = 1 + r.int(32);
    input.copy(scratch, off);
    const cap = r.int(5) === 0 ? r.int(input.length + 1) : input.length;
    const wire = cap + (r.int(5) === 0 ? r.int(3000) : 0);
    const p = dec.decode(scratch, off, cap, wire);
    if (p) {
      accepted++;
      // A datagram reassembled from fragments lies in its own buffer.
      const [lo, hi] = p.buf === scratch ? [off, off + cap] : [0, p.buf.length];
      if (p.payloadLength < 0 || p.payloadMissing < 0 || p.payloadOffset < lo || p.payloadOffset + p.payloadLength > hi) {
        throw new Error(`decoder view outside the frame (seed ${seed}, input ${i}): ${input.toString('hex')}`);
      }
      table.onPacket(p, i);
      if (table.heldBytes > memcap) throw new Error(`held ${table.heldBytes} > memcap (seed ${seed}, input ${i})`);
    }
    if (dec.fragments.heldBytes > DEFAULT_FRAGMENT_OPTIONS.memcapBytes) throw new Error(`fragments hold ${dec.fragments.heldBytes} (seed ${seed}, input ${i})`);
    if (i % 1000 === 999) {
      dec.sweep(i * 100); // fragments time out after 30 "s": every 300k inputs
      table.sweep(i);
    }
  }
  dec.closeAll();
  table.closeAll(count);
  return { inputs: count, accepted, dropped };
}

/**
 * HTTP parser: never throws, never holds more than its limits allow, accounts for no more bytes
 * than it was given; fed in random pieces with random gaps, taints and stalls.
 */
export function fuzzParser(count: number, seed: number): FuzzReport {
  const r = new Rng(seed);
  const seeds = httpSeeds();
  const small: HttpParserLimits = { maxRequestLineBytes: 64, maxHeaderBytes: 256, maxHeaderCount: 8, maxBodyBytes: 512 };
  let accepted = 0;
  let dropped = 0;
  for (let i = 0; i < count; i++) {
    const limits = r.int(2) ? small : DEFAULT_HTTP_LIMITS;
    const bound = limits.maxRequestLineBytes + 2 + limits.maxHeaderBytes + limits.maxBodyBytes;
    let emitted = 0;
    let skipped = 0;
    const parser = new HttpRequestParser(
      {
        onRequest: (req) => {
          accepted++;
          emitted += req.body.length;
        },
        onDrop: (_reason, n, bytes) => {
          dropped += n;
          skipped += bytes;
        },
      },
      limits,
      { midstream: r.int(4) === 0 },
    );
    const input = r.int(10) === 0 ? randomBytes(r, 400) : mutate(r, r.pick(seeds), r.pick(seeds));
    let pushed = 0;
    for (let p = 0; p < input.length; ) {
      const n = 1 + r.int(r.int(2) ? 8 : 600);
      const piece = input.subarray(p, p + n);
      parser.push(piece, 0, piece.length);
      pushed += piece.length;
      p += n;
      if (parser.bufferedBytes > bound) throw new Error(`parser holds ${parser.bufferedBytes} > ${bound} (seed ${seed}, input ${i})`);
      switch (r.int(40)) {
        case 0: parser.gap(1 + r.int(100), r.pick(['lost', 'truncated', 'flow_cap', 'memcap'] as const)); break;
        case 1: parser.taint('overlap_conflict'); break;
        case 2: parser.stalled(); break;
      }
      if (parser.pendingBytes < 0) throw new Error(`negative pendingBytes (seed ${seed}, input ${i})`);
    }
    parser.end();
    if (skipped + emitted > pushed) throw new Error(`accounted ${skipped + emitted} bytes of ${pushed} pushed (seed ${seed}, input ${i})`);
  }
  return { inputs: count, accepted, dropped };
}
