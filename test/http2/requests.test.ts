/**
 * H2RequestReader on hand-made frames: each rule of its header comment, with what is emitted and
 * what is counted; every case also fed one byte at a time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { H2RequestReader, MAX_OPEN_STREAMS } from '../../src/http2/requests.js';
import { DEFAULT_HTTP_LIMITS, type HttpParserLimits, type HttpRequest } from '../../src/http/types.js';
import type { GapCause } from '../../src/reassemble/stream.js';

function frame(type: number, flags: number, stream: number, payload: Buffer | string = Buffer.alloc(0)): Buffer {
  const p = typeof payload === 'string' ? Buffer.from(payload, 'latin1') : payload;
  const h = Buffer.alloc(9);
  h.writeUIntBE(p.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream, 5);
  return Buffer.concat([h, p]);
}

/** HPACK literal fields without indexing, new names, no Huffman (RFC 7541 §6.2.2). */
function block(...fields: string[]): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < fields.length; i += 2) {
    const n = Buffer.from(fields[i], 'latin1');
    const v = Buffer.from(fields[i + 1], 'latin1');
    if (n.length > 126 || v.length > 126) throw new Error('short strings only');
    parts.push(Buffer.from([0, n.length]), n, Buffer.from([v.length]), v);
  }
  return Buffer.concat(parts);
}

const SETTINGS = frame(4, 0, 0, Buffer.from('000100001000', 'hex'));
const req = (path: string, ...extra: string[]) => block(':method', 'POST', ':scheme', 'http', ':path', path, ':authority', 'svc:50051', ...extra);
const HEADERS = 1;
const DATA = 0;
const ES = 1;
const EH = 4;

type Step = Buffer | { gap: number; cause?: GapCause } | 'taint' | 'end';

interface Out { requests: HttpRequest[]; drops: Record<string, number>; reader: H2RequestReader }

function run(steps: Step[], byteAtATime: boolean, limits: HttpParserLimits = DEFAULT_HTTP_LIMITS): Out {
  const out: Out = { requests: [], drops: {}, reader: null as unknown as H2RequestReader };
  const r = new H2RequestReader({ onRequest: (q) => out.requests.push(q), onDrop: (reason, n) => { if (n > 0) out.drops[reason] = (out.drops[reason] ?? 0) + n; } }, limits);
  out.reader = r;
  for (const s of [SETTINGS, ...steps]) {
    if (s === 'taint') r.taint('overlap_conflict');
    else if (s === 'end') r.end();
    else if (Buffer.isBuffer(s)) {
      if (byteAtATime) for (let i = 0; i < s.length; i++) r.push(s, i, 1);
      else r.push(s, 0, s.length);
    } else r.gap(s.gap, s.cause);
  }
  r.end();
  return out;
}

function both(steps: Step[], limits?: HttpParserLimits): Out {
  const a = run(steps, false, limits);
  const b = run(steps, true, limits);
  assert.deepEqual(b.requests, a.requests, 'byte at a time: same requests');
  assert.deepEqual(b.drops, a.drops, 'byte at a time: same drops');
  return a;
}

const summary = (o: Out) => o.requests.map((r) => `${r.h2!.streamId} ${r.method} ${r.target} ${r.body.toString('latin1')}${r.trailers.length ? ` [${r.trailers.join(',')}]` : ''}`);

test('interleaved streams, CONTINUATION, padded DATA, trailers: each whole, in END_STREAM order', () => {
  const h3 = req('/b', 'x-a', '1', 'x-b', '2');
  const o = both([
    frame(HEADERS, EH, 1, req('/a', 'content-type', 'application/grpc')),
    frame(HEADERS, 0, 3, h3.subarray(0, 10)),
    frame(9, EH, 3, h3.subarray(10)),
    frame(DATA, 0x8, 1, Buffer.concat([Buffer.from([3]), Buffer.from('hel'), Buffer.alloc(3)])),
    frame(DATA, ES, 3, 'B'),
    frame(DATA, 0, 1, 'lo'),
    frame(HEADERS, ES | EH, 1, block('grpc-status', '0')),
  ]);
  assert.deepEqual(summary(o), ['3 POST /b B', '1 POST /a hello [grpc-status,0]']);
  assert.deepEqual(o.drops, {});
  assert.deepEqual(o.requests[0].headers, ['x-a', '1', 'x-b', '2']);
  assert.equal(o.requests[0].authority, 'svc:50051');
  assert.deepEqual(o.requests[0].h2, { scheme: 'http', streamId: 3 });
  assert.equal(o.reader.advertisedTableSize, 0x1000);
});

test('RST_STREAM from the client drops that stream only', () => {
  const o = both([
    frame(HEADERS, EH, 1, req('/a')), frame(DATA, 0, 1, 'part'),
    frame(HEADERS, EH, 3, req('/b')), frame(3, 0, 1, Buffer.alloc(4)), frame(DATA, ES, 3, 'ok'),
  ]);
  assert.deepEqual(summary(o), ['3 POST /b ok']);
  assert.deepEqual(o.drops, { http2_stream_reset: 1 });
});

test('malformed requests are stream errors: upper-case name, connection field, missing :path, content-length mismatch, trailers without END_STREAM', () => {
  const o = both([
    frame(HEADERS, EH | ES, 1, req('/a', 'X-Up', '1')),
    frame(HEADERS, EH | ES, 3, req('/b', 'connection', 'close')),
    frame(HEADERS, EH | ES, 5, block(':method', 'GET', ':scheme', 'http')),
    frame(HEADERS, EH, 7, req('/d', 'content-length', '5')), frame(DATA, ES, 7, 'abc'),
    frame(HEADERS, EH, 9, req('/e')), frame(HEADERS, EH, 9, block('x-t', '1')), frame(DATA, ES, 9, 'late'),
    frame(HEADERS, EH | ES, 11, block(':method', 'CONNECT', ':authority', 'h:1')),
    frame(HEADERS, EH | ES, 13, req('/ok')),
  ]);
  assert.deepEqual(summary(o), ['13 POST /ok ']);
  assert.deepEqual(o.drops, { http_malformed: 5, http_upgrade: 1 });
});

test('a hole inside a DATA payload loses that stream only; the connection goes on', () => {
  const data = frame(DATA, ES, 1, 'x'.repeat(100));
  const o = both([
    frame(HEADERS, EH, 1, req('/a')), data.subarray(0, 30), { gap: 50 }, data.subarray(80),
    frame(HEADERS, EH | ES, 3, req('/b')),
  ]);
  assert.deepEqual(summary(o), ['3 POST /b ']);
  assert.deepEqual(o.drops, { stream_gap: 1 });
});

test('a hole elsewhere loses the header state: open streams counted under its cause, nothing after replayed', () => {
  const o = both([
    frame(HEADERS, EH, 1, req('/a')), frame(HEADERS, EH, 3, req('/b')),
    { gap: 20, cause: 'kernel_drop' }, frame(HEADERS, EH | ES, 5, req('/c')),
  ]);
  assert.deepEqual(o.requests, []);
  assert.deepEqual(o.drops, { stream_gap_kernel_drop: 2 });
  const between = both([frame(HEADERS, EH | ES, 1, req('/a')), { gap: 40 }, frame(HEADERS, EH | ES, 3, req('/b'))]);
  assert.deepEqual(summary(between), ['1 POST /a ']);
  assert.deepEqual(between.drops, { stream_gap: 1 }, 'a hole between requests held at least one');
  // Framing is found again after the hole (three frames back to back): later requests are counted one by one.
  const later = both([
    frame(HEADERS, EH, 1, req('/a')), { gap: 7 },
    frame(HEADERS, EH | ES, 5, req('/c')), frame(DATA, ES, 1, 'stale'), frame(HEADERS, EH, 7, req('/d')), frame(DATA, ES, 7, 'x'), frame(HEADERS, EH | ES, 9, req('/e')),
  ]);
  assert.deepEqual(later.requests, []);
  assert.deepEqual(later.drops, { stream_gap: 4 });
});

test('an HPACK error: that request and every later one of the connection are http2_hpack_error', () => {
  const o = both([
    frame(HEADERS, EH | ES, 1, req('/a')),
    frame(HEADERS, EH, 3, req('/b')),
    frame(HEADERS, EH | ES, 5, Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f])), // index far past the tables
    frame(DATA, ES, 3, 'lost'),
    frame(HEADERS, EH | ES, 7, req('/d')),
    frame(HEADERS, EH | ES, 9, req('/e')),
  ]);
  assert.deepEqual(summary(o), ['1 POST /a ']);
  assert.deepEqual(o.drops, { http2_hpack_error: 4 });
});

test('protocol errors: a frame between HEADERS and its CONTINUATION, an even stream id', () => {
  const o = both([frame(HEADERS, 0, 1, req('/a')), frame(6, 0, 0, Buffer.alloc(8)), frame(9, EH, 1, Buffer.alloc(0))]);
  assert.deepEqual(o.drops, { http2_protocol_error: 1 });
  const e = both([frame(HEADERS, EH | ES, 2, req('/a'))]);
  assert.deepEqual(e.drops, { http2_protocol_error: 1 });
});

test('limits: body and decoded header list over HttpParserLimits drop that stream; too many open streams', () => {
  const small = { ...DEFAULT_HTTP_LIMITS, maxBodyBytes: 10, maxHeaderBytes: 300 };
  const o = both([
    frame(HEADERS, EH, 1, req('/big')), frame(DATA, 0, 1, 'x'.repeat(8)), frame(DATA, ES, 1, 'x'.repeat(8)),
    frame(HEADERS, EH | ES, 3, req('/h', 'x-long', 'v'.repeat(100), 'x-long2', 'v'.repeat(100))),
    frame(HEADERS, EH | ES, 5, req('/ok')),
  ], small);
  assert.deepEqual(summary(o), ['5 POST /ok ']);
  assert.deepEqual(o.drops, { http_body_too_large: 1, http_headers_too_large: 1 });
  // A header block too large to hold (compressed): its insertions are unknown, the header state is lost.
  const lost = both([frame(HEADERS, EH | ES, 1, req('/h', 'x-a', 'v'.repeat(120), 'x-b', 'v'.repeat(120), 'x-c', 'v'.repeat(120))), frame(HEADERS, EH | ES, 3, req('/next'))], small);
  assert.deepEqual(lost.drops, { http_headers_too_large: 1, http2_hpack_error: 1 });
  const many: Buffer[] = [];
  for (let i = 0; i <= MAX_OPEN_STREAMS; i++) many.push(frame(HEADERS, EH, 1 + 2 * i, req(`/s${i}`)));
  const m = run(many, false);
  assert.deepEqual(m.drops, { http2_stream_limit: 1, http2_incomplete: MAX_OPEN_STREAMS });
});

test('the connection ends or is tainted with streams open: each counted, none replayed', () => {
  const o = both([frame(HEADERS, EH, 1, req('/a')), frame(DATA, 0, 1, 'x'), frame(HEADERS, EH | ES, 3, req('/b')), 'end']);
  assert.deepEqual(summary(o), ['3 POST /b ']);
  assert.deepEqual(o.drops, { http2_incomplete: 1 });
  const t = both([frame(HEADERS, EH, 1, req('/a')), 'taint', frame(DATA, ES, 1, 'x')]);
  assert.deepEqual(t.requests, []);
  assert.deepEqual(t.drops, { stream_overlap_conflict: 1 });
});
