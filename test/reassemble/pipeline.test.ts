/**
 * FlowTable and HttpRequestParser together, as the daemon wires them: the same client byte stream
 * cut into random segments, reordered, duplicated and retransmitted with overlaps must give the
 * same requests as the stream parsed in one piece, with nothing dropped. Segments with different
 * bytes in an overlap: requests are emitted only as the first copy had them, never a mix or a
 * resync artifact, and a conflict seen while the first copy was still held always drops.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Decoder } from '../../src/decode/decoder.js';
import { HttpRequestParser } from '../../src/http/parser.js';
import type { HttpDropReason, HttpRequest } from '../../src/http/types.js';
import { FlowTable } from '../../src/reassemble/table.js';
import { buildFrame, TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN } from '../fixtures/frames.js';

interface Result {
  requests: string[];
  drops: Partial<Record<HttpDropReason, number>>;
}

function describe(r: HttpRequest): string {
  return `${r.method} ${r.target} ${r.headers.join('|')} ${r.body.toString('latin1')}`;
}

function parseWhole(stream: Buffer): Result {
  const out: Result = { requests: [], drops: {} };
  const p = new HttpRequestParser({
    onRequest: (r) => out.requests.push(describe(r)),
    onDrop: (reason, n) => {
      if (n) out.drops[reason] = (out.drops[reason] ?? 0) + n;
    },
  });
  p.push(stream, 0, stream.length);
  p.end();
  return out;
}

/** `signed`: the segment carries a TCP-MD5 option (set on the Packet as the TCP decoder reports it). */
interface Seg { seq: number; data: Buffer; flags: number; signed?: boolean }

function runPipeline(isn: number, segs: Seg[]): Result & { held: number } {
  const out: Result = { requests: [], drops: {} };
  const table = new FlowTable({ port: 80 }, () =>
    new HttpRequestParser({
      onRequest: (r) => out.requests.push(describe(r)),
      onDrop: (reason, n) => {
        if (n) out.drops[reason] = (out.drops[reason] ?? 0) + n;
      },
    }),
  );
  const dec = new Decoder(80);
  const send = (seq: number, flags: number, payload: Buffer, signed = false) => {
    const tcpOptions = signed ? Uint8Array.from([19, 18, ...new Array(16).fill(0xab)]) : undefined;
    const f = buildFrame({ src: '10.0.0.1', dst: '10.0.0.2', sport: 40000, dport: 80, seq, flags, payload, tcpOptions });
    const p = dec.decode(f, 0, f.length, f.length)!;
    p.signed = signed;
    table.onPacket(p, 0);
  };
  send(isn, TCP_SYN, Buffer.alloc(0));
  for (const s of segs) send(s.seq, s.flags, s.data, s.signed);
  const held = table.heldBytes;
  table.closeAll(0);
  return { ...out, held };
}

const requestArb = fc
  .record({
    method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE'),
    path: fc.stringMatching(/^\/[a-z0-9/?=&]{0,30}$/),
    headers: fc.array(fc.tuple(fc.stringMatching(/^X-[A-Za-z]{1,8}$/), fc.stringMatching(/^[ -~]{0,20}$/).map((v) => v.trim())), { maxLength: 4 }),
    body: fc.uint8Array({ maxLength: 3000 }),
    chunked: fc.boolean(),
  })
  .map((r) => {
    const body = Buffer.from(r.body).toString('latin1');
    let s = `${r.method} ${r.path} HTTP/1.1\r\nHost: h\r\n${r.headers.map(([n, v]) => `${n}: ${v}\r\n`).join('')}`;
    if (body.length === 0) return `${s}\r\n`;
    if (r.chunked) {
      s += 'Transfer-Encoding: chunked\r\n\r\n';
      for (let i = 0; i < body.length; i += 700) {
        const c = body.slice(i, i + 700);
        s += `${c.length.toString(16)}\r\n${c}\r\n`;
      }
      return `${s}0\r\n\r\n`;
    }
    return `${s}Content-Length: ${body.length}\r\n\r\n${body}`;
  });

const ISNS = [0, 1, 0xffffffff, 0xfffffff5, 0x7fffffff];

/** Cut [0, len) into consecutive segments of the given sizes (cycled). */
function cut(len: number, sizes: number[]): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let i = 0, k = 0; i < len; k++) {
    const n = Math.min(len - i, sizes[k % sizes.length]);
    out.push([i, i + n]);
    i += n;
  }
  return out;
}

test('split, reordered, duplicated, overlapping with the same bytes: same requests as in one piece', () => {
  let runs = 0;
  fc.assert(
    fc.property(
      fc.array(requestArb, { minLength: 1, maxLength: 5 }),
      fc.array(fc.integer({ min: 1, max: 2000 }), { minLength: 1, maxLength: 8 }),
      fc.constantFrom(...ISNS).chain((isn) => fc.oneof(fc.constant(isn), fc.nat({ max: 0xffffffff }))),
      fc.array(fc.nat(), { maxLength: 40 }), // order permutation keys
      fc.array(fc.tuple(fc.nat(), fc.nat({ max: 3000 })), { maxLength: 6 }), // overlapping retransmissions
      fc.boolean(),
      (reqs, sizes, isn, keys, retrans, fin) => {
        runs++;
        const stream = Buffer.from(reqs.join(''), 'latin1');
        const expected = parseWhole(stream);
        const pieces = cut(stream.length, sizes);
        const segs: Seg[] = pieces.map(([a, b], i) => ({
          seq: (isn + 1 + a) >>> 0,
          data: stream.subarray(a, b),
          flags: TCP_ACK | TCP_PSH | (fin && i === pieces.length - 1 ? TCP_FIN : 0),
        }));
        // Retransmissions: arbitrary ranges of the stream, same bytes.
        for (const [start, n] of retrans) {
          const a = start % stream.length;
          const b = Math.min(stream.length, a + 1 + n);
          segs.push({ seq: (isn + 1 + a) >>> 0, data: stream.subarray(a, b), flags: TCP_ACK | TCP_PSH });
        }
        // Reorder by random keys; duplicate some.
        const order = segs.map((s, i) => ({ s, k: keys[i % Math.max(1, keys.length)] ?? i, i }));
        order.sort((x, y) => x.k - y.k || x.i - y.i);
        const list = order.flatMap(({ s, k }) => (k % 5 === 0 ? [s, s] : [s]));
        const got = runPipeline(isn, list);
        assert.deepEqual(got.requests, expected.requests);
        assert.deepEqual(got.drops, {});
        assert.equal(got.held, 0);
      },
    ),
    { numRuns: 250 },
  );
  assert.equal(runs >= 250, true);
});

test('overlaps with different bytes: no request mixes copies unannounced; a held conflict always drops', () => {
  fc.assert(
    fc.property(
      fc.array(requestArb, { minLength: 2, maxLength: 4 }),
      fc.integer({ min: 1, max: 1500 }),
      fc.constantFrom(...ISNS),
      fc.nat(),
      fc.integer({ min: 1, max: 40 }),
      fc.boolean(),
      (reqs, size, isn, where, n, early) => {
        const stream = Buffer.from(reqs.join(''), 'latin1');
        const a = where % stream.length;
        const b = Math.min(stream.length, a + n);
        const forged = Buffer.from(stream.subarray(a, b));
        for (let i = 0; i < forged.length; i++) forged[i] ^= 0x20 | (i & 1);
        const segs: Seg[] = cut(stream.length, [size]).map(([x, y]) => ({ seq: (isn + 1 + x) >>> 0, data: stream.subarray(x, y), flags: TCP_ACK | TCP_PSH }));
        const evil: Seg = { seq: (isn + 1 + a) >>> 0, data: forged, flags: TCP_ACK | TCP_PSH };
        // The forged copy first (held ahead of a hole) or right after the real bytes went through.
        const list = early ? [evil, ...segs] : [...segs.filter((s) => (s.seq - isn - 1) >>> 0 <= a), evil, ...segs.filter((s) => (s.seq - isn - 1) >>> 0 > a)];
        const got = runPipeline(isn, list);
        // First copy wins: the bytes each position got first (the forged copy, where it came first).
        const firstWins = Buffer.from(stream);
        const realBefore = early ? 0 : Math.max(...list.slice(0, list.indexOf(evil)).map((s) => ((s.seq - isn - 1) >>> 0) + s.data.length), 0);
        for (let i = Math.max(a, realBefore); i < b; i++) firstWins[i] = forged[i - a];
        const allowed = new Set([...parseWhole(stream).requests, ...parseWhole(firstWins).requests]);
        for (const r of got.requests) assert.ok(allowed.has(r), `emitted a request nobody sent: ${r.slice(0, 80)}`);
        if (early && a % size !== 0) {
          // The forged copy was still held when a real segment covering its start came (no real
          // segment starts exactly at it, which would let the held copy drain first and win): the
          // conflict is always seen.
          assert.ok((got.drops.stream_overlap_conflict ?? 0) >= 1, JSON.stringify(got.drops));
          assert.ok(!got.requests.some((r) => !parseWhole(stream).requests.includes(r)));
        }
        assert.equal(got.held, 0);
      },
    ),
    { numRuns: 250 },
  );
});

test('resets the server would ignore, anywhere in the stream, change nothing', () => {
  fc.assert(
    fc.property(
      fc.array(requestArb, { minLength: 1, maxLength: 4 }),
      fc.array(fc.integer({ min: 1, max: 2000 }), { minLength: 1, maxLength: 6 }),
      fc.constantFrom(...ISNS),
      // Where (before which segment) and how: off the next sequence number by `off`, or exact but signed.
      fc.array(fc.tuple(fc.nat(), fc.oneof(fc.integer({ min: -0x7fffffff, max: -1 }), fc.integer({ min: 1, max: 0x7fffffff }), fc.constant(0))), { minLength: 1, maxLength: 6 }),
      (reqs, sizes, isn, resets) => {
        const stream = Buffer.from(reqs.join(''), 'latin1');
        const segs: Seg[] = cut(stream.length, sizes).map(([a, b]) => ({ seq: (isn + 1 + a) >>> 0, data: stream.subarray(a, b), flags: TCP_ACK | TCP_PSH }));
        const list: Seg[] = [];
        for (let i = 0; i <= segs.length; i++) {
          const next = i < segs.length ? segs[i].seq : (isn + 1 + stream.length) >>> 0;
          for (const [where, off] of resets)
            if (where % (segs.length + 1) === i) list.push({ seq: (next + off) >>> 0, data: Buffer.alloc(0), flags: TCP_RST | TCP_ACK, signed: off === 0 });
          if (i < segs.length) list.push(segs[i]);
        }
        const got = runPipeline(isn, list);
        assert.deepEqual(got.requests, parseWhole(stream).requests);
        assert.deepEqual(got.drops, {});
      },
    ),
    { numRuns: 200 },
  );
});

test('a request cut by a hole the kernel drop explains is dropped as stream_gap_kernel_drop; the next one goes through', () => {
  for (const loss of [true, false]) {
    const out: Result = { requests: [], drops: {} };
    const table = new FlowTable({ port: 80, holeTimeoutMs: 100 }, () =>
      new HttpRequestParser({
        onRequest: (r) => out.requests.push(describe(r)),
        onDrop: (reason, n) => {
          if (n) out.drops[reason] = (out.drops[reason] ?? 0) + n;
        },
      }),
    );
    const dec = new Decoder(80);
    const send = (seq: number, flags: number, payload: string, now: number) => {
      const f = buildFrame({ src: '10.0.0.1', dst: '10.0.0.2', sport: 40000, dport: 80, seq, flags, payload });
      table.onPacket(dec.decode(f, 0, f.length, f.length)!, now);
    };
    const a = 'POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n';
    const b = 'GET /b HTTP/1.1\r\nHost: h\r\n\r\n';
    send(0, TCP_SYN, '', 0);
    send(1, TCP_ACK | TCP_PSH, a + '01234', 0);
    // Body bytes 5-9 never reach us.
    send(1 + a.length + 10, TCP_ACK | TCP_PSH, b, 10);
    if (loss) table.captureLoss(20);
    table.sweep(200);
    table.closeAll(300);
    assert.deepEqual(out.requests, ['GET /b Host|h '], `loss=${loss}`);
    assert.deepEqual(out.drops, loss ? { stream_gap_kernel_drop: 1 } : { stream_gap: 1 });
  }
});
