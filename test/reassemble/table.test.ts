import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Decoder } from '../../src/decode/decoder.js';
import { FlowTable, type TableOptions } from '../../src/reassemble/table.js';
import type { FlowInfo, GapCause, StreamSink, TaintCause } from '../../src/reassemble/stream.js';
import { buildFrame, TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN } from '../fixtures/frames.js';

/**
 * Records what the table delivers: bytes, gaps as '<gap N>' (or '<gap N cause>' when not 'lost'),
 * taints as '<taint>', and end. Claims every byte since the last '|' as pending (a message in
 * progress), so the table keeps them for overlap checks.
 */
class Recorder implements StreamSink {
  parts: string[] = [];
  /** What `peer` was given: the server's in-order bytes, '<seen>' for the zero-length notice. */
  peerParts: string[] = [];
  ended = 0;
  stalls = 0;
  constructor(readonly info: FlowInfo, readonly midstream: boolean) {}
  push(buf: Uint8Array, off: number, len: number) {
    this.parts.push(Buffer.from(buf.subarray(off, off + len)).toString('latin1'));
  }
  gap(n: number, cause?: GapCause) {
    this.parts.push(cause && cause !== 'lost' ? `<gap ${n} ${cause}>` : `<gap ${n}>`);
  }
  taint(cause: TaintCause) {
    assert.equal(cause, 'overlap_conflict');
    this.parts.push('<taint>');
  }
  stalled() {
    this.stalls++;
  }
  peer(buf: Uint8Array, off: number, len: number) {
    this.peerParts.push(len === 0 ? '<seen>' : Buffer.from(buf.subarray(off, off + len)).toString('latin1'));
  }
  get pendingBytes() {
    const t = this.text;
    const i = Math.max(t.lastIndexOf('|'), t.lastIndexOf('>'));
    return t.length - i - 1;
  }
  end() {
    this.ended++;
  }
  get bufferedBytes() {
    return 0;
  }
  get text() {
    return this.parts.join('');
  }
}

interface Seg {
  seq: number;
  data?: string;
  flags?: number;
  cut?: number;
  sport?: number;
  src?: string;
  reverse?: boolean;
  /** RFC 7323 timestamp value (TSval) carried. */
  ts?: number;
  /** A TCP-MD5 (RFC 2385) or TCP-AO (RFC 5925) option carried. */
  sig?: 'md5' | 'ao';
}

/** The segment's TCP options as on the wire: timestamps (kind 8), MD5 (kind 19), AO (kind 29). */
function tcpOptions(s: Seg): Uint8Array | undefined {
  const o: number[] = [];
  if (s.ts !== undefined) o.push(1, 1, 8, 10, ...[24, 16, 8, 0].map((b) => (s.ts! >>> b) & 255), 0, 0, 0, 0);
  if (s.sig === 'md5') o.push(19, 18, ...new Array(16).fill(0xab));
  if (s.sig === 'ao') o.push(29, 16, 1, 1, ...new Array(12).fill(0xcd));
  return o.length ? Uint8Array.from(o) : undefined;
}

function harness(opts: Partial<TableOptions> = {}) {
  const sinks: Recorder[] = [];
  const table = new FlowTable({ port: 80, ...opts }, (info, mid) => {
    const r = new Recorder(info, mid);
    sinks.push(r);
    return r;
  });
  const dec = new Decoder(80);
  const feed = (s: Seg, now = 0) => {
    const v6 = (s.src ?? '').includes(':');
    const c = { src: s.src ?? '10.1.1.1', dst: v6 ? 'fd00::2' : '10.2.2.2', sport: s.sport ?? 5555, dport: 80 };
    const spec = s.reverse ? { src: c.dst, dst: c.src, sport: 80, dport: c.sport } : c;
    const frame = buildFrame({ ...spec, seq: s.seq >>> 0, flags: s.flags ?? TCP_ACK | TCP_PSH, payload: s.data ?? '', tcpOptions: tcpOptions(s) });
    const cap = frame.length - (s.cut ?? 0);
    const p = dec.decode(frame, 0, cap, frame.length);
    assert.ok(p, 'frame decodes');
    // The options as the TCP decoder reports them (set here so these tests do not depend on it).
    p.hasTimestamp = s.ts !== undefined;
    p.tsVal = (s.ts ?? 0) >>> 0;
    p.tsEcr = 0;
    p.signed = s.sig !== undefined;
    table.onPacket(p, now);
  };
  return { table, sinks, feed };
}

/** Sends `text` as segments of `size` after a SYN with the given ISN, in the given order. */
function segments(isn: number, text: string, size: number): Seg[] {
  const out: Seg[] = [];
  for (let i = 0; i < text.length; i += size) out.push({ seq: (isn + 1 + i) >>> 0, data: text.slice(i, i + size) });
  return out;
}

const MSG = 'GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n';

for (const isn of [0, 1, 0xffffffff, 0xfffffff5, 0x7fffffff, 123456789]) {
  test(`in order, reordered, duplicated: same bytes (ISN ${isn})`, () => {
    const segs = segments(isn, MSG, 7);
    for (const order of ['forward', 'reverse', 'dup', 'swap']) {
      const { sinks, feed, table } = harness();
      feed({ seq: isn, flags: TCP_SYN });
      let list = [...segs];
      if (order === 'reverse') list = [list[0], ...list.slice(1).reverse()];
      if (order === 'dup') list = list.flatMap((s) => [s, s]);
      if (order === 'swap') for (let i = 0; i + 1 < list.length; i += 2) [list[i], list[i + 1]] = [list[i + 1], list[i]];
      for (const s of list) feed(s);
      assert.equal(sinks.length, 1, order);
      assert.equal(sinks[0].text, MSG, order);
      assert.equal(table.heldBytes, 0);
      assert.equal(sinks[0].midstream, false);
    }
  });
}

test('overlapping retransmission with new bytes at the end delivers only the new bytes', () => {
  const { sinks, feed, table } = harness();
  feed({ seq: 100, flags: TCP_SYN });
  feed({ seq: 101, data: 'GET /a HT' });
  feed({ seq: 105, data: '/a HTTP/1.1\r\n' });
  feed({ seq: 101, data: 'GET /a HTTP/1.1\r\n\r\n' });
  assert.equal(sinks[0].text, 'GET /a HTTP/1.1\r\n\r\n');
  assert.ok(table.event('overlap_trimmed') >= 2);
});

test('midstream pickup: no SYN seen, flow starts at the first data segment', () => {
  const { sinks, feed, table } = harness();
  feed({ seq: 5000, flags: TCP_ACK }); // bare ACK: no flow
  assert.equal(sinks.length, 0);
  feed({ seq: 5000, data: 'GET / HTTP/1.1\r\n\r\n' });
  assert.equal(sinks.length, 1);
  assert.equal(sinks[0].midstream, true);
  assert.equal(sinks[0].text, 'GET / HTTP/1.1\r\n\r\n');
  assert.equal(table.event('flows_midstream'), 1);
});

test('SYN with data, FIN closes once, retransmitted FIN is ignored', () => {
  const { sinks, feed, table } = harness();
  feed({ seq: 10, flags: TCP_SYN, data: 'GET /' });
  feed({ seq: 16, data: ' HTTP/1.1\r\n\r\n', flags: TCP_ACK | TCP_FIN });
  feed({ seq: 16, data: ' HTTP/1.1\r\n\r\n', flags: TCP_ACK | TCP_FIN });
  assert.equal(sinks[0].text, 'GET / HTTP/1.1\r\n\r\n');
  assert.equal(sinks[0].ended, 1);
  assert.equal(sinks.length, 1);
  assert.equal(table.event('flows_closed_fin'), 1);
});

test('FIN arriving before the last data waits for it', () => {
  const { sinks, feed } = harness();
  feed({ seq: 0, flags: TCP_SYN });
  feed({ seq: 6, data: 'world', flags: TCP_ACK | TCP_FIN });
  assert.equal(sinks[0].ended, 0);
  feed({ seq: 1, data: 'hello' });
  assert.equal(sinks[0].text, 'helloworld');
  assert.equal(sinks[0].ended, 1);
});

test('RST from the client or the server ends the flow', () => {
  for (const reverse of [false, true]) {
    const { sinks, feed, table } = harness();
    feed({ seq: 0, flags: TCP_SYN });
    feed({ seq: 1, data: 'GET / HT' });
    feed({ seq: reverse ? 777 : 9, flags: TCP_RST, reverse });
    assert.equal(sinks[0].ended, 1, `reverse=${reverse}`);
    assert.equal(table.event('flows_closed_rst'), 1);
  }
});

test('server-to-client segments never create flows (both directions mirrored)', () => {
  const { sinks, feed, table } = harness();
  feed({ seq: 0, flags: TCP_SYN });
  feed({ seq: 900, flags: TCP_SYN | TCP_ACK, reverse: true });
  feed({ seq: 1, data: 'abc' });
  feed({ seq: 901, data: 'HTTP/1.1 200 OK\r\n', reverse: true });
  assert.equal(sinks.length, 1);
  assert.equal(sinks[0].text, 'abc');
  assert.equal(table.event('server_segments'), 2);
});

test('a segment captured shorter than on the wire becomes a gap, never data', () => {
  const { sinks, feed, table } = harness();
  feed({ seq: 0, flags: TCP_SYN });
  feed({ seq: 1, data: 'abcdefghij', cut: 4 });
  feed({ seq: 11, data: 'KLM' });
  assert.equal(sinks[0].text, 'abcdef<gap 4 truncated>KLM');
  assert.equal(table.event('truncated_segments'), 1);
});

test('a hole that never fills is given up after the timeout', () => {
  const { sinks, feed, table } = harness({ holeTimeoutMs: 1000 });
  feed({ seq: 0, flags: TCP_SYN }, 0);
  feed({ seq: 1, data: 'aaaa' }, 0);
  feed({ seq: 9, data: 'cccc' }, 10);
  table.sweep(500);
  assert.equal(sinks[0].text, 'aaaa');
  table.sweep(1200);
  assert.equal(sinks[0].text, 'aaaa<gap 4>cccc');
  assert.equal(table.event('holes_skipped_timeout'), 1);
  assert.equal(table.heldBytes, 0);
});

test('a flow ended while holes are open (end of capture, idle): the holes are given up first, so what lies behind them is delivered and the loss counted', () => {
  for (const how of ['closeAll', 'idle'] as const) {
    const { sinks, feed, table } = harness({ holeTimeoutMs: 1000, idleTimeoutMs: 5000 });
    feed({ seq: 0, flags: TCP_SYN }, 0);
    feed({ seq: 1, data: 'aaaa' }, 0);
    feed({ seq: 9, data: 'cccc' }, 10);
    feed({ seq: 17, data: 'eeee', flags: TCP_ACK | TCP_FIN }, 10);
    if (how === 'closeAll') table.closeAll(20);
    else {
      table.sweep(500);
      table.sweep(20_000);
    }
    assert.equal(sinks[0].text, 'aaaa<gap 4>cccc<gap 4>eeee', how);
    assert.equal(sinks[0].ended, 1, how);
    assert.equal(table.heldBytes, 0, how);
  }
});

test('per-flow cap: the oldest hole is given up, visibly', () => {
  const { sinks, feed, table } = harness({ maxFlowBufferBytes: 10 });
  feed({ seq: 0, flags: TCP_SYN });
  feed({ seq: 3, data: 'cdefgh' });
  feed({ seq: 11, data: 'klmnop' });
  // Holding both would exceed 10 bytes: the first hole is given up, the second segment waits.
  assert.equal(sinks[0].text, '<gap 2 flow_cap>cdefgh');
  assert.equal(table.event('holes_skipped_flow_cap'), 1);
  assert.equal(table.heldBytes, 6);
  feed({ seq: 19, data: 'rstuvw' });
  assert.equal(sinks[0].text, '<gap 2 flow_cap>cdefgh<gap 2 flow_cap>klmnop');
  assert.equal(table.heldBytes, 6);
});

test('global memcap: biggest holder gives up its holes; other flows keep flowing', () => {
  const { sinks, feed, table } = harness({ memcapBytes: 1000 });
  for (let i = 0; i < 50; i++) {
    feed({ seq: 0, flags: TCP_SYN, sport: 1000 + i });
    feed({ seq: 100, data: 'x'.repeat(40), sport: 1000 + i }); // hole of 99 bytes
  }
  assert.ok(table.heldBytes <= 1000, `held ${table.heldBytes}`);
  assert.ok(table.event('holes_skipped_memcap') >= 1);
  feed({ seq: 0, flags: TCP_SYN, sport: 9 });
  feed({ seq: 1, data: 'in order', sport: 9 });
  assert.equal(sinks.at(-1)!.text, 'in order');
});

test('idle flows expire and their sink is ended; closed flows linger then go', () => {
  const { sinks, feed, table } = harness({ idleTimeoutMs: 100, closedLingerMs: 50 });
  feed({ seq: 0, flags: TCP_SYN }, 0);
  feed({ seq: 1, data: 'GET' }, 0);
  table.sweep(200);
  assert.equal(sinks[0].ended, 1);
  assert.equal(table.flowCount, 0);
  feed({ seq: 0, flags: TCP_SYN, sport: 2 }, 300);
  feed({ seq: 1, data: 'x', flags: TCP_ACK | TCP_FIN, sport: 2 }, 300);
  assert.equal(table.flowCount, 1);
  feed({ seq: 1, data: 'x', sport: 2 }, 310);
  assert.equal(table.event('after_close'), 1);
  table.sweep(400);
  assert.equal(table.flowCount, 0);
});

test('churn: every closed connection lingers; its late copies, SYN retransmission and port reuse are told apart', () => {
  const { sinks, feed, table } = harness({ closedLingerMs: 1000, maxFlows: 3000 });
  const N = 2000;
  for (let i = 0; i < N; i++) {
    feed({ seq: 100, flags: TCP_SYN, sport: 10_000 + i }, i);
    feed({ seq: 101, data: 'GET / HTTP/1.0\r\n\r\n', flags: TCP_ACK | TCP_PSH | TCP_FIN, sport: 10_000 + i }, i);
  }
  assert.equal(table.openFlows, 0);
  assert.equal(table.flowCount, N, 'every closed flow lingers');
  assert.equal(table.event('flows_closed_fin'), N);
  feed({ seq: 101, data: 'GET / HTTP/1.0\r\n\r\n', sport: 10_000 }, N);
  assert.equal(table.event('after_close'), 1, 'a late copy is not a new midstream flow');
  assert.equal(table.event('flows_midstream'), 0);
  feed({ seq: 100, flags: TCP_SYN, sport: 10_001 }, N);
  assert.equal(table.event('retransmitted'), 1, 'the same ISN again is a retransmitted SYN');
  assert.equal(sinks.length, N);
  feed({ seq: 5000, flags: TCP_SYN, sport: 10_002 }, N);
  feed({ seq: 5001, data: 'next', sport: 10_002 }, N);
  assert.equal(table.event('flows_reused'), 1);
  assert.equal(sinks.at(-1)!.text, 'next', 'a new ISN on the same ports is a new connection');
  assert.equal(table.flowCount, N, 'the new connection took its tomb\'s place');
  // Full table: the oldest tomb goes first, the open flow stays.
  for (let i = 0; i < 1500; i++) feed({ seq: 7, flags: TCP_SYN, sport: 20_000 + i }, N + 1);
  assert.equal(table.flowCount, 3000);
  assert.equal(table.openFlows, 1501);
  assert.equal(table.event('flows_evicted'), 0);
  // Linger over: tombs go oldest first, and only those.
  table.sweep(N + 990);
  assert.equal(table.flowCount, 1501 + 10, 'the tombs closed at 1990..1999 are left');
  table.sweep(N + 1500);
  assert.equal(table.flowCount, 1501);
  feed({ seq: 101, data: 'late', sport: 10_000 }, N + 1500);
  assert.equal(table.event('flows_midstream'), 1, 'after the linger a copy is taken for a new connection');
});

test('port reuse: a new SYN ends the old connection and starts fresh', () => {
  const { sinks, feed, table } = harness();
  feed({ seq: 0, flags: TCP_SYN });
  feed({ seq: 1, data: 'one' });
  feed({ seq: 50000, flags: TCP_SYN });
  feed({ seq: 50001, data: 'two' });
  assert.equal(sinks.length, 2);
  assert.equal(sinks[0].ended, 1);
  assert.equal(sinks[1].text, 'two');
  assert.equal(table.event('flows_reused'), 1);
});

test('keep-alive probes and bare ACKs do not disturb the stream', () => {
  const { sinks, feed } = harness();
  feed({ seq: 0, flags: TCP_SYN });
  feed({ seq: 1, data: 'abc' });
  feed({ seq: 3, data: 'c', flags: TCP_ACK }); // keep-alive probe: 1 old byte
  feed({ seq: 3, flags: TCP_ACK });
  feed({ seq: 4, data: 'def' });
  assert.equal(sinks[0].text, 'abcdef');
});

test('GRO super-segment larger than the MSS is taken whole', () => {
  const { sinks, feed } = harness();
  const big = 'y'.repeat(60000);
  feed({ seq: 0, flags: TCP_SYN });
  feed({ seq: 1, data: big });
  assert.equal(sinks[0].text.length, 60000);
});

test('IPv6 flows are keyed and formatted', () => {
  const { sinks, feed } = harness();
  feed({ seq: 0, flags: TCP_SYN, src: 'fd00::1' });
  feed({ seq: 1, data: 'v6', src: 'fd00::1' });
  feed({ seq: 1, data: 'v4' });
  assert.equal(sinks.length, 2);
  assert.equal(sinks[0].info.clientAddr, 'fd00::1');
  assert.equal(sinks[0].info.serverAddr, 'fd00::2');
  assert.equal(sinks[1].info.serverAddr, '10.2.2.2');
});

// ---- overlaps that carry different bytes (policy: never deliver ambiguous bytes unannounced) ----

for (const isn of [0, 1, 0xffffffff, 0xfffffff5]) {
  test(`overlap with the same bytes is no conflict; with different bytes it taints (ISN ${isn})`, () => {
    const s = (n: number) => (isn + 1 + n) >>> 0;
    {
      const { sinks, feed, table } = harness();
      feed({ seq: isn, flags: TCP_SYN });
      feed({ seq: s(0), data: 'POST /a HTTP/1.1\r\n' });
      feed({ seq: s(6), data: 'a HTTP/1.1\r\nContent-Length: 2\r\n' }); // same bytes, plus new ones
      assert.equal(sinks[0].text, 'POST /a HTTP/1.1\r\nContent-Length: 2\r\n');
      assert.equal(table.event('overlap_conflict'), 0);
    }
    {
      const { sinks, feed, table } = harness();
      feed({ seq: isn, flags: TCP_SYN });
      feed({ seq: s(0), data: 'POST /a HTTP/1.1\r\n' });
      feed({ seq: s(6), data: 'b HTTP/1.1\r\nContent-Length: 2\r\n' }); // 'b' where 'a' was delivered
      assert.equal(sinks[0].text, 'POST /a HTTP/1.1\r\n<taint>Content-Length: 2\r\n');
      assert.equal(table.event('overlap_conflict'), 1);
    }
    {
      // Two held copies disagree: the taint comes right before the first ambiguous byte.
      const { sinks, feed, table } = harness();
      feed({ seq: isn, flags: TCP_SYN });
      feed({ seq: s(4), data: 'AAAA' });
      feed({ seq: s(6), data: 'BBBB' });
      assert.equal(table.event('overlap_conflict'), 1);
      feed({ seq: s(0), data: '|123' });
      assert.ok(sinks[0].text.startsWith('|123AA<taint>AA'), sinks[0].text);
      assert.ok(sinks[0].text.endsWith('BB'), sinks[0].text);
      assert.equal(table.heldBytes, 0);
    }
  });
}

test('a retransmission that differs only in bytes of a finished message does not taint', () => {
  const { sinks, feed, table } = harness();
  feed({ seq: 0, flags: TCP_SYN });
  feed({ seq: 1, data: 'done|' });
  feed({ seq: 1, data: 'DONE|' });
  assert.equal(sinks[0].text, 'done|');
  assert.equal(table.event('overlap_conflict'), 0);
  assert.equal(table.event('retransmitted'), 1);
});

test('overlap beyond the kept window is counted as unverified, not guessed', () => {
  const { sinks, feed, table } = harness({ overlapCheckBytes: 4 });
  feed({ seq: 0, flags: TCP_SYN });
  feed({ seq: 1, data: 'abcdefghij' });
  feed({ seq: 1, data: 'XXcdefghij' }); // differs only before the last 4 bytes
  assert.equal(table.event('overlap_conflict'), 0);
  assert.equal(table.event('overlap_unverified'), 1);
  feed({ seq: 1, data: 'abcdefgXij' }); // differs inside the window
  assert.equal(table.event('overlap_conflict'), 1);
  assert.equal(sinks[0].text, 'abcdefghij<taint>');
});

test('the kept window follows the message across many segments', () => {
  const { sinks, feed, table } = harness({ overlapCheckBytes: 16 });
  feed({ seq: 0, flags: TCP_SYN });
  let text = '';
  for (let i = 0; i < 50; i++) {
    const piece = String.fromCharCode(97 + (i % 26)).repeat(1 + (i % 7));
    feed({ seq: 1 + text.length, data: piece });
    text += piece;
  }
  // Same bytes over the last 16: fine; one differing byte among them: conflict.
  feed({ seq: 1 + text.length - 16, data: text.slice(-16) });
  assert.equal(table.event('overlap_conflict'), 0);
  const wrong = text.slice(-16, -1) + '#';
  feed({ seq: 1 + text.length - 16, data: wrong });
  assert.equal(table.event('overlap_conflict'), 1);
  assert.equal(sinks[0].text, `${text}<taint>`);
});

test('a keep-alive probe carrying a garbage byte on a quiet connection is no conflict', () => {
  const { sinks, feed, table } = harness({ holeTimeoutMs: 1000 });
  feed({ seq: 0, flags: TCP_SYN }, 0);
  feed({ seq: 1, data: 'GET / HTTP/1.1\r\n' }, 0);
  feed({ seq: 16, data: '\x00', flags: TCP_ACK }, 5000);
  feed({ seq: 17, data: '\r\n' }, 5000);
  assert.equal(sinks[0].text, 'GET / HTTP/1.1\r\n\r\n');
  assert.equal(table.event('overlap_conflict'), 0);
  // The same shape right after the byte it contradicts is a one-byte conflict, not a probe.
  feed({ seq: 0, flags: TCP_SYN, sport: 2 }, 0);
  feed({ seq: 1, data: 'GET / HTTP/1.1\r\n', sport: 2 }, 0);
  feed({ seq: 16, data: 'X', sport: 2 }, 10);
  assert.equal(sinks[1].text, 'GET / HTTP/1.1\r\n<taint>');
  assert.equal(table.event('overlap_conflict'), 1);
});

test('wrong TCP checksums are not a reason to drop (AWS mirrors offloaded checksums)', () => {
  const table = new FlowTable({ port: 80 }, (info, mid) => (sink = new Recorder(info, mid)));
  let sink!: Recorder;
  const dec = new Decoder(80);
  for (const [seq, flags, payload] of [[0, TCP_SYN, ''], [1, TCP_ACK | TCP_PSH, 'GET / HTTP/1.1\r\n\r\n']] as const) {
    const f = buildFrame({ src: '10.1.1.1', dst: '10.2.2.2', sport: 5, dport: 80, seq, flags, payload, badChecksum: true });
    table.onPacket(dec.decode(f, 0, f.length, f.length)!, 0);
  }
  assert.equal(sink.text, 'GET / HTTP/1.1\r\n\r\n');
});

test('gaps carry their cause: lost (timeout, bytes before FIN), memcap', () => {
  {
    const { sinks, feed, table } = harness({ holeTimeoutMs: 10 });
    feed({ seq: 0, flags: TCP_SYN }, 0);
    feed({ seq: 5, data: 'xy', flags: TCP_ACK | TCP_FIN }, 0);
    table.sweep(100);
    assert.equal(sinks[0].text, '<gap 4>xy');
    assert.equal(sinks[0].ended, 1);
  }
  {
    const { sinks, feed } = harness({ memcapBytes: 10 });
    feed({ seq: 0, flags: TCP_SYN });
    feed({ seq: 3, data: 'cdefgh' });
    feed({ seq: 0, flags: TCP_SYN, sport: 2 });
    feed({ seq: 5, data: 'efghij', sport: 2 });
    assert.equal(sinks[0].text, '<gap 2 memcap>cdefgh');
  }
});

test('a flow that stops sending is told once per silence (Expect: 100-continue timeout hook)', () => {
  const { sinks, feed, table } = harness({ holeTimeoutMs: 100 });
  feed({ seq: 0, flags: TCP_SYN }, 0);
  feed({ seq: 1, data: 'PUT / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n' }, 0);
  table.sweep(50);
  assert.equal(sinks[0].stalls, 0);
  feed({ seq: 100, flags: TCP_ACK }, 90); // a bare ACK (e.g. for the server's 417) is not data
  table.sweep(150);
  assert.equal(sinks[0].stalls, 1);
  table.sweep(400);
  assert.equal(sinks[0].stalls, 1);
  feed({ seq: 60, data: 'GET / HTTP/1.1\r\n\r\n' }, 500);
  table.sweep(700);
  assert.equal(sinks[0].stalls, 2);
});

test('thousands of flows holding data behind holes stay under the memcap; others keep flowing', () => {
  const { sinks, feed, table } = harness({ memcapBytes: 200_000, holeTimeoutMs: 1e9 });
  const chunk = 'z'.repeat(1000);
  for (let i = 0; i < 3000; i++) {
    feed({ seq: 0, flags: TCP_SYN, sport: 10000 + i });
    feed({ seq: 2, data: chunk, sport: 10000 + i }); // byte 1 never comes
    assert.ok(table.heldBytes <= 200_000);
    if (i % 500 === 0) {
      feed({ seq: 0, flags: TCP_SYN, sport: 60000 + i / 500 });
      feed({ seq: 1, data: 'in order|', sport: 60000 + i / 500 });
      assert.equal(sinks.at(-1)!.text, 'in order|');
    }
  }
  assert.equal(table.heldBytes, 200_000);
  assert.equal(table.event('holes_skipped_memcap'), 3000 - 200);
  assert.ok(sinks.some((s) => s.text === '<gap 1 memcap>' + chunk));
});

// ---- resets judged as their receiver would (RFC 5961 §3), and kernel drops blamed ----

const REQ_A = 'GET /a HTTP/1.1\r\nHost: x\r\n\r\n';
const REQ_B = 'GET /b HTTP/1.1\r\nHost: x\r\n\r\n';

test('a client reset at exactly the next sequence number ends the flow; behind a hole, so does one at the highest end seen', () => {
  {
    const { sinks, feed, table } = harness();
    feed({ seq: 0, flags: TCP_SYN });
    feed({ seq: 1, data: REQ_A });
    feed({ seq: 1 + REQ_A.length, flags: TCP_RST });
    assert.equal(sinks[0].ended, 1);
    assert.equal(table.event('flows_closed_rst'), 1);
    assert.equal(table.event('rst_ignored_seq'), 0);
  }
  for (const at of ['next', 'max end'] as const) {
    // Bytes 1-4 delivered, 5-8 lost by the mirror (the server may have them), 9-12 held.
    const { sinks, feed, table } = harness();
    feed({ seq: 0, flags: TCP_SYN });
    feed({ seq: 1, data: 'aaaa' });
    feed({ seq: 9, data: 'cccc' });
    feed({ seq: at === 'next' ? 5 : 13, flags: TCP_RST });
    assert.equal(sinks[0].ended, 1, at);
    assert.equal(table.event('flows_closed_rst'), 1, at);
    assert.equal(table.heldBytes, 0, at);
  }
  {
    // Held segments are sorted by start: the highest end may be an earlier, longer one's.
    const { sinks, feed } = harness();
    feed({ seq: 0, flags: TCP_SYN });
    feed({ seq: 9, data: 'cccccccccccc' }); // ends at 21
    feed({ seq: 11, data: 'cc' }); // ends at 13
    feed({ seq: 13, flags: TCP_RST });
    assert.equal(sinks[0].ended, 0);
    feed({ seq: 21, flags: TCP_RST });
    assert.equal(sinks[0].ended, 1);
  }
  {
    // A FIN beyond the hole: the server's next expected number is past it.
    const { sinks, feed } = harness();
    feed({ seq: 0, flags: TCP_SYN });
    feed({ seq: 9, data: 'cccc', flags: TCP_ACK | TCP_FIN });
    feed({ seq: 14, flags: TCP_RST });
    assert.equal(sinks[0].ended, 1);
  }
});

for (const isn of [0, 0xffffffff, 0xfffffff5]) {
  test(`a reset in the window, far outside it or behind is ignored and counted; the next request goes through (ISN ${isn})`, () => {
    const { sinks, feed, table } = harness();
    const at = (n: number) => (isn + 1 + n) >>> 0;
    feed({ seq: isn, flags: TCP_SYN });
    feed({ seq: at(0), data: REQ_A });
    const next = REQ_A.length;
    feed({ seq: at(next + 100), flags: TCP_RST }); // in the window: Linux answers with a challenge ACK
    feed({ seq: at(next + 0x7000_0000), flags: TCP_RST }); // far out of the window
    feed({ seq: at(next - 1), flags: TCP_RST | TCP_ACK }); // just behind
    assert.equal(table.event('rst_ignored_seq'), 3);
    assert.equal(table.event('flows_closed_rst'), 0);
    assert.equal(sinks[0].ended, 0);
    feed({ seq: at(next), data: REQ_B });
    assert.equal(sinks.length, 1);
    assert.equal(sinks[0].text, REQ_A + REQ_B);
    feed({ seq: at(next + REQ_B.length), flags: TCP_RST });
    assert.equal(sinks[0].ended, 1);
    assert.equal(table.event('flows_closed_rst'), 1);
  });
}

test('a reset carrying TCP-MD5 or TCP-AO on a connection set up without, or none on one set up with, is ignored', () => {
  for (const sig of ['md5', 'ao'] as const) {
    const { sinks, feed, table } = harness();
    feed({ seq: 0, flags: TCP_SYN });
    feed({ seq: 1, data: REQ_A });
    feed({ seq: 1 + REQ_A.length, flags: TCP_RST, sig });
    assert.equal(table.event('rst_ignored_signed'), 1, sig);
    assert.equal(sinks[0].ended, 0, sig);
    feed({ seq: 1 + REQ_A.length, data: REQ_B });
    assert.equal(sinks[0].text, REQ_A + REQ_B, sig);
  }
  {
    const { sinks, feed, table } = harness();
    feed({ seq: 0, flags: TCP_SYN, sig: 'md5' });
    feed({ seq: 1, data: REQ_A, sig: 'md5' });
    feed({ seq: 1 + REQ_A.length, flags: TCP_RST });
    assert.equal(table.event('rst_ignored_signed'), 1);
    assert.equal(sinks[0].ended, 0);
    feed({ seq: 1 + REQ_A.length, flags: TCP_RST, sig: 'md5' });
    assert.equal(sinks[0].ended, 1);
  }
  {
    // Picked up midstream: the first segment tells whether the connection is signed.
    const { sinks, feed, table } = harness();
    feed({ seq: 500, data: REQ_A, sig: 'ao' });
    feed({ seq: 500 + REQ_A.length, flags: TCP_RST, sig: 'ao' });
    assert.equal(sinks[0].ended, 1);
    assert.equal(table.event('rst_ignored_signed'), 0);
  }
});

test('a reset whose timestamp is older than the last one seen (fails PAWS) is ignored; none, or a fresh one, passes', () => {
  for (const base of [1000, 0xfffffff0]) {
    const { sinks, feed, table } = harness();
    const ts = (n: number) => (base + n) >>> 0;
    feed({ seq: 0, flags: TCP_SYN, ts: ts(0) });
    feed({ seq: 1, data: REQ_A, ts: ts(20) }); // with base 0xfffffff0, past the wrap
    const next = 1 + REQ_A.length;
    feed({ seq: next, flags: TCP_RST, ts: ts(10) });
    assert.equal(table.event('rst_ignored_timestamp'), 1, `base ${base}`);
    assert.equal(sinks[0].ended, 0);
    feed({ seq: next, data: REQ_B, ts: ts(30) });
    assert.equal(sinks[0].text, REQ_A + REQ_B);
    feed({ seq: next + REQ_B.length, flags: TCP_RST, ts: ts(29) }); // within Linux's PAWS window of 1
    assert.equal(sinks[0].ended, 1, `base ${base}`);
  }
  {
    const { sinks, feed } = harness();
    feed({ seq: 0, flags: TCP_SYN, ts: 5000 });
    feed({ seq: 1, data: REQ_A, ts: 5000 });
    feed({ seq: 1 + REQ_A.length, flags: TCP_RST });
    assert.equal(sinks[0].ended, 1, 'a reset without timestamps is judged by its sequence number');
  }
  {
    // A bare SYN only offers timestamps: no later segment showed they were agreed on.
    const { sinks, feed } = harness();
    feed({ seq: 0, flags: TCP_SYN, ts: 5000, data: 'GET' }); // even one with data (TCP Fast Open)
    feed({ seq: 4, flags: TCP_RST, ts: 10 });
    assert.equal(sinks[0].ended, 1);
  }
  {
    // Both judgements fail: counted once, under the sequence number.
    const { feed, table } = harness();
    feed({ seq: 0, flags: TCP_SYN });
    feed({ seq: 1, data: REQ_A, ts: 5000 });
    feed({ seq: 99999, flags: TCP_RST, ts: 10 });
    assert.equal(table.event('rst_ignored_seq'), 1);
    assert.equal(table.event('rst_ignored_timestamp'), 0);
  }
});

test('a server reset ends the flow only at the server sequence number the client expects', () => {
  const { sinks, feed, table } = harness();
  const RESP = 'HTTP/1.1 200 OK\r\n';
  feed({ seq: 0, flags: TCP_SYN });
  feed({ seq: 900, flags: TCP_SYN | TCP_ACK, reverse: true });
  feed({ seq: 1, data: REQ_A });
  feed({ seq: 901, data: RESP, reverse: true });
  const next = 901 + RESP.length;
  for (const seq of [next + 1, next - 1, next + 60000, 900]) feed({ seq, flags: TCP_RST, reverse: true });
  feed({ seq: next, flags: TCP_RST, reverse: true, sig: 'md5' });
  assert.equal(table.event('rst_ignored_seq'), 4);
  assert.equal(table.event('rst_ignored_signed'), 1);
  assert.equal(sinks[0].ended, 0);
  feed({ seq: 1 + REQ_A.length, data: REQ_B });
  assert.equal(sinks[0].text, REQ_A + REQ_B);
  feed({ seq: next, flags: TCP_RST | TCP_ACK, reverse: true });
  assert.equal(sinks[0].ended, 1);
  assert.equal(table.event('flows_closed_rst'), 1);
});

test('a server reset behind a server hole the mirror lost: accepted at the highest server end seen', () => {
  const { sinks, feed, table } = harness();
  feed({ seq: 0, flags: TCP_SYN });
  feed({ seq: 900, flags: TCP_SYN | TCP_ACK, reverse: true });
  feed({ seq: 1, data: REQ_A });
  feed({ seq: 951, data: 'tail of the response', reverse: true }); // 901-950 lost by the mirror
  feed({ seq: 951 + 20 + 5, flags: TCP_RST, reverse: true });
  assert.equal(table.event('rst_ignored_seq'), 1);
  feed({ seq: 951 + 20, flags: TCP_RST, reverse: true });
  assert.equal(sinks[0].ended, 1);
});

test('a server reset on a flow whose server side was never seen cannot be judged: accepted', () => {
  const { sinks, feed, table } = harness();
  feed({ seq: 0, flags: TCP_SYN });
  feed({ seq: 1, data: REQ_A });
  feed({ seq: 123456, flags: TCP_RST | TCP_ACK, reverse: true });
  assert.equal(sinks[0].ended, 1);
  assert.equal(table.event('rst_ignored_seq'), 0);
});

test('server payload in order reaches the sink\'s peer; nothing past a hole or a cut byte', () => {
  {
    const { sinks, feed, table } = harness();
    feed({ seq: 0, flags: TCP_SYN });
    feed({ seq: 0xfffffff0, flags: TCP_SYN | TCP_ACK, reverse: true });
    assert.deepEqual(sinks[0].peerParts, ['<seen>']);
    feed({ seq: 0xfffffff1, data: 'HTTP/1.1 ', reverse: true }); // wraps past 2^32
    feed({ seq: 0xfffffff1, data: 'HTTP/1.1 101', reverse: true }); // overlaps: only the new bytes
    feed({ seq: 0xfffffff1, data: 'HTTP/1.1 ', reverse: true }); // a retransmission: nothing
    feed({ seq: 0xfffffffa, flags: TCP_ACK, reverse: true }); // a bare ACK: nothing
    assert.deepEqual(sinks[0].peerParts, ['<seen>', 'HTTP/1.1 ', '101']);
    feed({ seq: (0xfffffff1 + 20) >>> 0, data: 'later', reverse: true }); // ahead of a hole: skipped
    feed({ seq: (0xfffffff1 + 12) >>> 0, data: ' Sw', reverse: true }); // fills part of the hole
    feed({ seq: (0xfffffff1 + 25) >>> 0, data: 'more', reverse: true }); // still behind the hole
    assert.deepEqual(sinks[0].peerParts, ['<seen>', 'HTTP/1.1 ', '101', ' Sw']);
    assert.equal(sinks[0].text, '');
    assert.equal(table.event('server_segments'), 8);
  }
  {
    const { sinks, feed } = harness();
    feed({ seq: 0, flags: TCP_SYN });
    feed({ seq: 1, data: REQ_A });
    feed({ seq: 700, data: 'HTTP/1.1 200 OK\r\n', reverse: true, cut: 4 }); // first seen midstream, cut short
    feed({ seq: 717, data: 'Server: x\r\n', reverse: true });
    assert.deepEqual(sinks[0].peerParts, ['<seen>', 'HTTP/1.1 200 ']);
    // Cut bytes still count for where the server is: its reset at 728 is accepted.
    feed({ seq: 728, flags: TCP_RST, reverse: true });
    assert.equal(sinks[0].ended, 1);
  }
  {
    // Server segments of unknown connections make no flow and reach no sink.
    const { sinks, feed, table } = harness();
    feed({ seq: 900, data: 'HTTP/1.1 200 OK\r\n', reverse: true });
    assert.equal(sinks.length, 0);
    assert.equal(table.flowCount, 0);
  }
});

test('a SYN with the same ISN after an accepted reset starts a new connection', () => {
  for (const reverse of [false, true]) {
    const { sinks, feed, table } = harness();
    feed({ seq: 100, flags: TCP_SYN });
    feed({ seq: 101, data: REQ_A });
    feed({ seq: reverse ? 5000 : 101 + REQ_A.length, flags: TCP_RST, reverse });
    assert.equal(sinks[0].ended, 1);
    feed({ seq: 100, flags: TCP_SYN });
    feed({ seq: 101, data: REQ_B });
    assert.equal(table.event('flows_created'), 2, `reverse=${reverse}`);
    assert.equal(sinks.length, 2);
    assert.equal(sinks[1].text, REQ_B);
    assert.equal(sinks[1].midstream, false);
    assert.equal(table.event('retransmitted'), 0);
    // Its own retransmitted SYN is a retransmission again.
    feed({ seq: 100, flags: TCP_SYN });
    assert.equal(table.event('retransmitted'), 1);
    assert.equal(sinks.length, 2);
  }
});

test('a SYN with the same ISN stays a retransmission on an open flow, after an ignored reset, and after a FIN', () => {
  {
    const { sinks, feed, table } = harness();
    feed({ seq: 100, flags: TCP_SYN });
    feed({ seq: 100, flags: TCP_SYN });
    feed({ seq: 101, data: REQ_A });
    feed({ seq: 7777, flags: TCP_RST }); // ignored
    feed({ seq: 100, flags: TCP_SYN });
    feed({ seq: 101 + REQ_A.length, data: REQ_B });
    assert.equal(table.event('retransmitted'), 2);
    assert.equal(table.event('flows_created'), 1);
    assert.equal(sinks[0].text, REQ_A + REQ_B);
  }
  {
    const { sinks, feed, table } = harness();
    feed({ seq: 100, flags: TCP_SYN });
    feed({ seq: 101, data: REQ_A, flags: TCP_ACK | TCP_FIN });
    assert.equal(sinks[0].ended, 1);
    feed({ seq: 100, flags: TCP_SYN });
    assert.equal(table.event('retransmitted'), 1);
    assert.equal(table.event('flows_created'), 1);
  }
});

test('a hole given up while the capture reported kernel drops is a kernel_drop gap; otherwise lost', () => {
  const run = (lossAt: number | null, fin: boolean) => {
    const { sinks, feed, table } = harness({ holeTimeoutMs: 100 });
    feed({ seq: 0, flags: TCP_SYN }, 0);
    feed({ seq: 1, data: 'aaaa' }, 0);
    feed({ seq: 9, data: 'cccc', flags: fin ? TCP_ACK | TCP_FIN : TCP_ACK }, 1000); // hole seen at 1000
    if (lossAt !== null) table.captureLoss(lossAt);
    table.sweep(1200);
    return { text: sinks[0].text, ended: sinks[0].ended, timeout: table.event('holes_skipped_timeout'), kernel: table.event('holes_skipped_kernel_drop') };
  };
  assert.deepEqual(run(null, false), { text: 'aaaa<gap 4>cccc', ended: 0, timeout: 1, kernel: 0 });
  assert.deepEqual(run(1150, false), { text: 'aaaa<gap 4 kernel_drop>cccc', ended: 0, timeout: 0, kernel: 1 });
  // The window opens holeTimeoutMs before the hole was seen.
  assert.deepEqual(run(900, false), { text: 'aaaa<gap 4 kernel_drop>cccc', ended: 0, timeout: 0, kernel: 1 });
  assert.deepEqual(run(899, false), { text: 'aaaa<gap 4>cccc', ended: 0, timeout: 1, kernel: 0 });
  assert.deepEqual(run(1150, true), { text: 'aaaa<gap 4 kernel_drop>cccc', ended: 1, timeout: 0, kernel: 1 });
  {
    // Bytes before a FIN that never came.
    const { sinks, feed, table } = harness({ holeTimeoutMs: 100 });
    table.captureLoss(300);
    feed({ seq: 0, flags: TCP_SYN }, 500);
    feed({ seq: 5, data: 'xy', flags: TCP_ACK | TCP_FIN }, 500);
    table.sweep(650);
    assert.equal(sinks[0].text, '<gap 4>xy', 'drops reported long before the hole are not blamed');
    assert.equal(sinks[0].ended, 1);
    feed({ seq: 0, flags: TCP_SYN, sport: 2 }, 700);
    feed({ seq: 5, data: 'xy', flags: TCP_ACK | TCP_FIN, sport: 2 }, 700);
    table.captureLoss(650);
    table.sweep(850);
    assert.equal(sinks[1].text, '<gap 4 kernel_drop>xy');
    assert.equal(sinks[1].ended, 1);
    assert.equal(table.event('holes_skipped_timeout'), 1);
    assert.equal(table.event('holes_skipped_kernel_drop'), 1);
  }
  {
    // Caps are their own cause, kernel drops or not.
    const { sinks, feed, table } = harness({ maxFlowBufferBytes: 10 });
    table.captureLoss(0);
    feed({ seq: 0, flags: TCP_SYN });
    feed({ seq: 3, data: 'cdefgh' });
    feed({ seq: 11, data: 'klmnop' });
    assert.equal(sinks[0].text, '<gap 2 flow_cap>cdefgh');
  }
});
