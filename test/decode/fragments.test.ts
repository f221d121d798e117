/**
 * IP fragment reassembly through the Decoder: a fragmented TCP segment must decode to exactly the
 * packet its unfragmented frame decodes to, whatever the order and duplication of its fragments;
 * every datagram given up is counted once under its reason, and memory stays under the cap.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Decoder } from '../../src/decode/decoder.js';
import { ANOMALIES, SKIPS, type Anomaly, type Skip } from '../../src/decode/anomalies.js';
import type { Packet } from '../../src/decode/packet.js';
import { buildFrame, fragmentFrame, splitFrame, TCP_ACK, TCP_PSH, type FragmentCut, type FrameSpec } from '../fixtures/frames.js';

const BODY = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7 + 3) & 0xff));
const REQUEST = Buffer.concat([Buffer.from('POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 3000\r\n\r\n'), BODY]);
const TS = Buffer.from([1, 1, 8, 10, 0, 0, 0x12, 0x34, 0, 0, 0, 9]);
const V4: FrameSpec = { src: '10.0.0.1', dst: '10.0.0.2', sport: 40000, dport: 80, seq: 4242, ack: 77, flags: TCP_ACK | TCP_PSH, payload: REQUEST, tcpOptions: TS };
const V6: FrameSpec = { ...V4, src: 'fd00::1', dst: 'fd00::2' };

/** What the rest of the pipeline reads from a decoded packet. */
function snapshot(p: Packet) {
  return {
    ipVersion: p.ipVersion,
    src: [...p.src],
    dst: [...p.dst],
    srcPort: p.srcPort,
    dstPort: p.dstPort,
    seq: p.seq,
    ack: p.ack,
    flags: p.flags,
    window: p.window,
    payload: Buffer.from(p.buf.subarray(p.payloadOffset, p.payloadOffset + p.payloadLength)).toString('hex'),
    payloadMissing: p.payloadMissing,
    hasTimestamp: p.hasTimestamp,
    tsVal: p.tsVal,
  };
}
type Snapshot = ReturnType<typeof snapshot>;

/** Decodes each frame from a reused "ring" buffer (overwritten between frames, as the ring is). */
function feed(d: Decoder, frames: Buffer[]): Array<Snapshot | null> {
  const ring = Buffer.alloc(70_000);
  return frames.map((f) => {
    ring.fill(0xee);
    f.copy(ring, 16);
    const p = d.decode(ring, 16, f.length, f.length);
    return p && snapshot(p);
  });
}

function whole(spec: FrameSpec): Snapshot {
  const [s] = feed(new Decoder(80), [buildFrame(spec)]);
  assert.ok(s);
  return s;
}

function counts(d: Decoder): Record<string, number> {
  const out: Record<string, number> = {};
  ANOMALIES.forEach((a) => d.counters.anomaly(a) && (out[a] = d.counters.anomaly(a)));
  SKIPS.forEach((s) => d.counters.skip(s) && (out[s] = d.counters.skip(s)));
  return out;
}

/** The bytes after the IP header (no extension headers in these frames). */
function ipPayload(frame: Buffer): Buffer {
  return frame.subarray(frame[14] >> 4 === 4 ? 14 + 20 : 14 + 40);
}

function only(results: Array<Snapshot | null>): Snapshot | null {
  const got = results.filter((r) => r !== null);
  assert.ok(got.length <= 1, `${got.length} packets from one datagram`);
  return got[0] ?? null;
}

for (const [family, spec] of [['IPv4', V4], ['IPv6', V6]] as const) {
  test(`${family}: fragments in order reassemble to the unfragmented packet`, () => {
    const d = new Decoder(80);
    const frags = splitFrame(buildFrame(spec), 1208);
    assert.equal(frags.length, 3);
    const r = feed(d, frags);
    assert.deepEqual(r.slice(0, 2), [null, null]);
    assert.deepEqual(r[2], whole(spec));
    assert.deepEqual(counts(d), { fragment_held: 2 });
    assert.equal(d.fragments.reassembled, 1);
    assert.equal(d.fragments.pending, 0);
    assert.equal(d.fragments.heldBytes, 0);
  });

  test(`${family}: out of order, and duplicated fragments`, () => {
    const frags = splitFrame(buildFrame(spec), 512);
    const d = new Decoder(80);
    assert.deepEqual(only(feed(d, [...frags].reverse())), whole(spec));
    assert.deepEqual(counts(d), { fragment_held: frags.length - 1 });
    const d2 = new Decoder(80);
    const dup = [frags[3], frags[0], frags[3], frags[1], frags[0], frags[2], ...frags.slice(4)];
    assert.deepEqual(only(feed(d2, dup)), whole(spec));
    assert.deepEqual(counts(d2), { fragment_held: frags.length - 1, fragment_duplicate: 2 });
    assert.equal(d2.fragments.heldBytes, 0);
  });

  test(`${family}: a conflicting overlap gives the datagram up, counted once`, () => {
    const frame = buildFrame(spec);
    const len = REQUEST.length + 32;
    const evil = Buffer.from(ipPayload(frame).subarray(800, 2400));
    evil[300] ^= 0xff; // byte 1100: inside the overlap with the first fragment
    const cuts: FragmentCut[] = [{ start: 0, end: 1600 }, { start: 800, end: 2400, data: evil }, { start: 1600, end: len }];
    const d = new Decoder(80);
    assert.equal(only(feed(d, fragmentFrame(frame, cuts))), null);
    assert.deepEqual(counts(d), { fragment_held: 1, fragment_overlap: 1, fragment_discarded: 1 });
    assert.equal(d.fragments.heldBytes, 256, 'only the marker is left');
  });

  test(`${family}: a datagram past its deadline is given up; late fragments start afresh`, () => {
    const d = new Decoder(80, { timeoutMs: 30_000 });
    d.sweep(1_000);
    const frags = splitFrame(buildFrame(spec), 1208);
    feed(d, frags.slice(0, 2));
    d.sweep(30_999);
    assert.equal(d.fragments.pending, 1);
    d.sweep(31_000);
    assert.equal(d.fragments.pending, 0);
    assert.equal(d.fragments.heldBytes, 0);
    assert.equal(only(feed(d, frags.slice(2))), null);
    assert.deepEqual(counts(d), { fragment_held: 3, fragment_timeout: 1 });
  });
}

test('IPv4: an overlap with the same bytes is harmless', () => {
  const len = REQUEST.length + 32;
  const cuts: FragmentCut[] = [{ start: 0, end: 1600 }, { start: 800, end: 2400 }, { start: 8, end: 16 }, { start: 1600, end: len }];
  const d = new Decoder(80);
  assert.deepEqual(only(feed(d, fragmentFrame(buildFrame(V4), cuts))), whole(V4));
  assert.deepEqual(counts(d), { fragment_held: 2, fragment_duplicate: 1 });
});

test('IPv6: any partial overlap gives the datagram up (RFC 5722); a contained copy is a duplicate', () => {
  const len = REQUEST.length + 32;
  const frame = buildFrame(V6);
  const d = new Decoder(80);
  const partial = fragmentFrame(frame, [{ start: 0, end: 1600 }, { start: 800, end: 2400 }, { start: 1600, end: len }]);
  assert.equal(only(feed(d, partial)), null);
  assert.deepEqual(counts(d), { fragment_held: 1, fragment_overlap: 1, fragment_discarded: 1 });
  const d2 = new Decoder(80);
  const contained = fragmentFrame(frame, [{ start: 0, end: 1600 }, { start: 800, end: 1600 }, { start: 1600, end: len }]);
  assert.deepEqual(only(feed(d2, contained)), whole(V6));
  assert.deepEqual(counts(d2), { fragment_held: 1, fragment_duplicate: 1 });
});

test('capture ending counts the datagrams still incomplete, not the discarded ones', () => {
  const d = new Decoder(80);
  feed(d, splitFrame(buildFrame(V4), 1208).slice(1));
  feed(d, splitFrame(buildFrame(V6), 1208).slice(0, 1));
  feed(d, fragmentFrame(buildFrame(V4), [{ start: 0, end: 16 }, { start: 8, end: 24, data: Buffer.alloc(16, 1) }], 7));
  d.closeAll();
  assert.deepEqual(counts(d), { fragment_held: 4, fragment_overlap: 1, fragment_incomplete: 2 });
  assert.equal(d.fragments.pending, 0);
  assert.equal(d.fragments.heldBytes, 0);
});

test('a discarded datagram is forgotten silently at its deadline', () => {
  const d = new Decoder(80, { timeoutMs: 1000 });
  d.sweep(0);
  const frame = buildFrame(V4);
  feed(d, fragmentFrame(frame, [{ start: 0, end: 16 }, { start: 8, end: 24, data: Buffer.alloc(16, 1) }]));
  d.sweep(1000);
  assert.deepEqual(counts(d), { fragment_held: 1, fragment_overlap: 1 });
  assert.equal(d.fragments.pending, 0);
  assert.equal(d.fragments.heldBytes, 0);
});

test('memcap: the oldest datagrams are given up, counted, and the cap holds', () => {
  const cap = 10_000;
  const d = new Decoder(80, { memcapBytes: cap });
  const n = 12;
  for (let id = 0; id < n; id++) {
    feed(d, splitFrame(buildFrame({ ...V4, sport: 41000 + id }), 1208, id).slice(0, 1));
    assert.ok(d.fragments.heldBytes <= cap, `${d.fragments.heldBytes} held`);
  }
  const c = counts(d);
  assert.ok(c.fragment_memcap > 0);
  assert.equal(c.fragment_memcap + d.fragments.pending, n, 'every datagram is either waiting or counted');
  // The newest datagram survived and completes.
  const last = splitFrame(buildFrame({ ...V4, sport: 41000 + n - 1 }), 1208, n - 1);
  assert.deepEqual(only(feed(d, last.slice(1))), whole({ ...V4, sport: 41000 + n - 1 }));
});

test('malformed fragments give their datagram up under their own name', () => {
  const frame = buildFrame(V4);
  const len = REQUEST.length + 32;
  const run = (frames: Buffer[], capCut = 0) => {
    const d = new Decoder(80);
    const ring = Buffer.alloc(70_000);
    for (const f of frames) {
      f.copy(ring);
      d.decode(ring, 0, f.length - capCut, f.length);
    }
    return counts(d);
  };
  assert.deepEqual(run(fragmentFrame(frame, [{ start: 0, end: 13, more: true }])), { fragment_bad_length: 1 });
  assert.deepEqual(run(fragmentFrame(frame, [{ start: 0, end: 16 }, { start: 24, end: 40, more: false }, { start: 40, end: 48, more: true }])), {
    fragment_held: 2,
    fragment_bad_length: 1,
  });
  assert.deepEqual(run(fragmentFrame(frame, [{ start: 1600, end: len }, { start: 8, end: 24, more: false }])), { fragment_held: 1, fragment_bad_length: 1 });
  assert.deepEqual(run(fragmentFrame(frame, [{ start: 65528, end: 65528 + 16, data: Buffer.alloc(16), more: false }])), { fragment_too_big: 1 });
  assert.deepEqual(run(fragmentFrame(frame, [{ start: 0, end: 1600 }]), 10), { fragment_truncated: 1 });
  const tiny = Array.from({ length: 130 }, (_, i) => ({ start: i * 8, end: i * 8 + 8 }));
  assert.deepEqual(run(fragmentFrame(frame, tiny)), { fragment_held: 128, fragment_too_many: 1, fragment_discarded: 1 });
});

test('a reassembled datagram goes through the port filter and the protocol check', () => {
  const d = new Decoder(80);
  assert.equal(only(feed(d, splitFrame(buildFrame({ ...V4, dport: 8080 }), 1208))), null);
  const udp = buildFrame(V6);
  udp[14 + 6] = 17;
  assert.equal(only(feed(d, splitFrame(udp, 1208, 9))), null);
  assert.deepEqual(counts(d), { fragment_held: 4, other_port: 1, not_tcp: 1 });
  assert.equal(d.fragments.reassembled, 2);
});

test('buffers are reused between datagrams without mixing their bytes', () => {
  const d = new Decoder(80);
  let seed = 11;
  const rnd = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8) % n;
  for (let i = 0; i < 40; i += 2) {
    const specs = [i, i + 1].map((k) => ({ ...(k % 4 < 2 ? V4 : V6), sport: 42000 + k, payload: Buffer.from(Array.from({ length: 1500 + rnd(20000) }, () => rnd(256))) }));
    const [a, b] = specs.map((sp, k) => splitFrame(buildFrame(sp), 1448, i + k));
    const mixed = a.flatMap((f, k) => [f, ...(b[k] ? [b[k]] : [])]).concat(b.slice(a.length));
    const got = feed(d, mixed).filter((r) => r !== null);
    assert.equal(got.length, 2);
    for (const g of got) assert.deepEqual(g, whole(specs[g.srcPort - 42000 - i]));
  }
  assert.equal(d.fragments.heldBytes, 0);
  assert.equal(d.fragments.reassembled, 40);
});

test('IPv6: a fragment inside a reassembled datagram goes round again', () => {
  const inner = splitFrame(buildFrame(V6), 1208, 1);
  const outer = fragmentFrame(inner[0], [{ start: 0, end: 608 }, { start: 608, end: 1208 + 8 }], 2);
  const d = new Decoder(80);
  const r = feed(d, [...outer, inner[1], inner[2]]);
  assert.deepEqual(r.slice(0, 3), [null, null, null]);
  assert.deepEqual(r[3], whole(V6));
  assert.deepEqual(counts(d), { fragment_held: 3 });
  assert.equal(d.fragments.reassembled, 2);
});

test('IPv6 atomic fragment (RFC 6946): decoded as the whole packet, and counted', () => {
  for (const spec of [V6, { ...V6, ipv6Ext: [0, 60] }]) {
    const d = new Decoder(80);
    const [p] = feed(d, [buildFrame({ ...spec, ipv6Fragment: { offset: 0, more: false } })]);
    assert.deepEqual(p, whole(spec));
    assert.deepEqual(counts(d), { ipv6_atomic_fragment: 1 });
    assert.equal(d.fragments.pending, 0);
  }
});

test('property: any split of a datagram, in any order, with duplicates, gives the same packet', () => {
  const arb = fc.record({
    v6: fc.boolean(),
    size: fc.integer({ min: 1, max: REQUEST.length }),
    cuts: fc.uniqueArray(fc.integer({ min: 1, max: 600 }), { maxLength: 40 }),
    order: fc.array(fc.nat(), { maxLength: 60 }),
    dups: fc.array(fc.nat(), { maxLength: 5 }),
  });
  fc.assert(
    fc.property(arb, ({ v6, size, cuts, order, dups }) => {
      const spec = { ...(v6 ? V6 : V4), payload: REQUEST.subarray(0, size) };
      const frame = buildFrame(spec);
      const len = size + 32;
      const ends = [...new Set(cuts.map((c) => c * 8).filter((c) => c < len)), len].sort((a, b) => a - b);
      fc.pre(ends.length > 1); // one piece is no fragment at all
      const pieces = ends.map((e, i) => ({ start: i ? ends[i - 1] : 0, end: e }));
      const frags = fragmentFrame(frame, pieces);
      // Shuffle by the drawn order, then repeat some fragments before the last one goes in.
      const shuffled = frags.map((f, i) => ({ f, k: order[i] ?? i })).sort((a, b) => a.k - b.k).map((x) => x.f);
      const last = shuffled.pop()!;
      const withDups = [...shuffled, ...dups.filter(() => shuffled.length > 0).map((k) => shuffled[k % shuffled.length]), last];
      const d = new Decoder(80);
      const r = feed(d, withDups);
      assert.deepEqual(r[r.length - 1], whole(spec));
      assert.equal(only(r) !== null, true);
      const c = counts(d);
      for (const a of ANOMALIES) assert.equal(c[a as Anomaly] ?? 0, 0, a);
      assert.equal((c.fragment_held ?? 0) + (c.fragment_duplicate ?? 0), withDups.length - 1);
      for (const s of ['not_ip', 'not_tcp', 'other_port', 'fragment_discarded'] as Skip[]) assert.equal(c[s] ?? 0, 0, s);
      assert.equal(d.fragments.heldBytes, 0);
    }),
    { numRuns: 300 },
  );
});

test('property: IPv4 fragments overlapping with the same bytes, in any order, give the same packet', () => {
  const arb = fc.record({
    size: fc.integer({ min: 1, max: REQUEST.length }),
    extra: fc.array(fc.tuple(fc.nat(500), fc.integer({ min: 1, max: 200 })), { maxLength: 12 }),
    cuts: fc.uniqueArray(fc.integer({ min: 1, max: 500 }), { minLength: 1, maxLength: 10 }),
    order: fc.array(fc.nat(), { maxLength: 40 }),
  });
  fc.assert(
    fc.property(arb, ({ size, extra, cuts, order }) => {
      const spec = { ...V4, payload: REQUEST.subarray(0, size) };
      const len = size + 32;
      const ends = [...new Set(cuts.map((c) => c * 8).filter((c) => c < len)), len].sort((a, b) => a - b);
      fc.pre(ends.length > 1);
      const pieces: FragmentCut[] = ends.map((e, i) => ({ start: i ? ends[i - 1] : 0, end: e }));
      // Extra copies of arbitrary ranges (offsets on 8-byte units; only a last one may end oddly).
      for (const [s8, n8] of extra) {
        const start = Math.min(s8 * 8, Math.floor((len - 1) / 8) * 8);
        const end = Math.min(len, start + n8 * 8);
        if (start > 0 || end < len) pieces.push({ start, end }); // else it is no fragment
      }
      const frags = fragmentFrame(buildFrame(spec), pieces);
      const shuffled = frags.map((f, i) => ({ f, k: order[i] ?? i })).sort((a, b) => a.k - b.k).map((x) => x.f);
      const d = new Decoder(80);
      // Copies left over after completion can make a second whole copy: a duplicate, as on the wire.
      const got = feed(d, shuffled).filter((r) => r !== null);
      assert.ok(got.length >= 1);
      for (const g of got) assert.deepEqual(g, whole(spec));
      for (const a of ANOMALIES) assert.equal(d.counters.anomaly(a), 0, a);
    }),
    { numRuns: 300 },
  );
});

test('hostile fragments (random offsets, lengths, flags, ids, bytes): no throw, the cap holds, views stay inside', () => {
  const cap = 64 * 1024;
  const d = new Decoder(80, { memcapBytes: cap, timeoutMs: 50 });
  d.sweep(0);
  let seed = 5;
  const rnd = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8) % n;
  const frames = [buildFrame(V4), buildFrame(V6)];
  let packets = 0;
  const check = (f: Buffer, cap2 = f.length) => {
    const p = d.decode(f, 0, cap2, f.length);
    if (p) {
      packets++;
      assert.ok(p.payloadOffset >= 0 && p.payloadLength >= 0 && p.payloadOffset + p.payloadLength <= p.buf.length);
    }
    assert.ok(d.fragments.heldBytes <= cap, `held ${d.fragments.heldBytes}`);
  };
  for (let i = 0; i < 30_000; i++) {
    const frame = frames[rnd(2)];
    if (i % 40 === 0) {
      // Now and then a real datagram, shuffled, among the junk (with ids the junk also uses).
      const real = splitFrame(frame, 8 * (1 + rnd(300)), rnd(64));
      for (let k = real.length - 1; k > 0; k--) {
        const j = rnd(k + 1);
        [real[k], real[j]] = [real[j], real[k]];
      }
      real.forEach((f) => check(f));
      continue;
    }
    const start = rnd(3) === 0 ? 0 : rnd(3) === 0 ? rnd(8190) * 8 : rnd(64) * 8;
    const len = rnd(4) === 0 ? 1 + rnd(3000) : 8 * (1 + rnd(rnd(4) === 0 ? 300 : 8));
    // Bytes that mostly agree with other copies of the same offsets, sometimes not.
    const data = Buffer.from(Array.from({ length: len }, (_, k) => (start + k) & 0xff));
    if (rnd(20) === 0) data[rnd(len)] ^= 0xff;
    const [f] = fragmentFrame(frame, [{ start, end: start + len, more: rnd(3) !== 0, data }], rnd(64));
    check(f, rnd(20) === 0 ? rnd(f.length + 1) : f.length);
    if (i % 100 === 99) d.sweep(i);
  }
  d.closeAll();
  assert.equal(d.fragments.heldBytes, 0);
  assert.equal(d.fragments.pending, 0);
  // The generator reaches every path: the cap, the deadline, overlaps, duplicates, completion.
  const c = counts(d);
  for (const k of ['fragment_overlap', 'fragment_memcap', 'fragment_timeout', 'fragment_bad_length', 'fragment_held', 'fragment_duplicate', 'fragment_discarded']) assert.ok(c[k] > 0, `${k}: ${JSON.stringify(c)}`);
  assert.ok(packets > 0 && d.fragments.reassembled > packets / 2, `${packets} packets, ${d.fragments.reassembled} reassembled`);
});

test('IPv4 fragments of other protocols are skipped at once, not held', () => {
  const udp = buildFrame(V4);
  udp[14 + 9] = 17;
  const d = new Decoder(80);
  assert.equal(only(feed(d, splitFrame(udp, 1208))), null);
  assert.deepEqual(counts(d), { not_tcp: 3 });
  assert.equal(d.fragments.pending, 0);
});
