import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { HttpRequestParser } from '../../src/http/parser.js';
import { DEFAULT_HTTP_LIMITS, type HttpDropReason, type HttpParserLimits, type HttpRequest } from '../../src/http/types.js';
import type { GapCause } from '../../src/reassemble/stream.js';
import { CASES, expectedSkipped, wireBytes, type Case } from './corpus.js';

// ---- harness ----

/** Stream bytes, a hole (with its cause), reassembly's taint, or the table's stall signal. */
type Step = Buffer | { gap: number; cause?: GapCause } | { taint: true } | { stalled: true } | { peer: Buffer };

interface Outcome {
  requests: HttpRequest[];
  /** Emitted requests and lost requests, in stream order. */
  order: string[];
  lost: Partial<Record<HttpDropReason, number>>;
  skipped: number;
  skippedBy: Partial<Record<HttpDropReason, number>>;
  maxBuffered: number;
  bufferedAfterEachPush: number[];
}

interface RunOpts {
  midstream?: boolean;
  limits?: Partial<HttpParserLimits>;
  end?: boolean;
}

/**
 * Pushes each piece from a scratch buffer at an odd offset and scribbles over the scratch
 * afterwards, so a parser that keeps a view instead of a copy yields wrong bytes.
 */
function run(steps: Step[], o: RunOpts = {}): Outcome {
  const out: Outcome = { requests: [], order: [], lost: {}, skipped: 0, skippedBy: {}, maxBuffered: 0, bufferedAfterEachPush: [] };
  const limits = { ...DEFAULT_HTTP_LIMITS, ...o.limits };
  const parser = new HttpRequestParser(
    {
      onRequest(req) {
        out.requests.push(req);
        out.order.push(`req ${req.method} ${req.target}`);
      },
      onDrop(reason, requests, skippedBytes) {
        assert.ok(Number.isInteger(requests) && requests >= 0, `requests=${requests}`);
        assert.ok(skippedBytes >= 0 && Number.isInteger(skippedBytes));
        assert.ok(requests > 0 || skippedBytes > 0, 'empty drop event');
        if (requests > 0) {
          out.lost[reason] = (out.lost[reason] ?? 0) + requests;
          for (let i = 0; i < requests; i++) out.order.push(`drop ${reason}`);
        }
        out.skipped += skippedBytes;
        out.skippedBy[reason] = (out.skippedBy[reason] ?? 0) + skippedBytes;
      },
    },
    limits,
    { midstream: o.midstream },
  );
  let scratch = Buffer.alloc(0);
  for (const s of steps) {
    if (Buffer.isBuffer(s)) {
      if (scratch.length < s.length + 16) scratch = Buffer.alloc(s.length + 16);
      s.copy(scratch, 7);
      parser.push(scratch, 7, s.length);
      scratch.fill(0xee);
      out.bufferedAfterEachPush.push(parser.bufferedBytes);
      out.maxBuffered = Math.max(out.maxBuffered, parser.bufferedBytes);
    } else if ('gap' in s) {
      parser.gap(s.gap, s.cause);
    } else if ('taint' in s) {
      parser.taint('overlap_conflict');
    } else if ('peer' in s) {
      parser.peer(s.peer, 0, s.peer.length);
    } else {
      parser.stalled();
    }
  }
  if (o.end !== false) parser.end();
  return out;
}

function splitEvery(b: Buffer, n: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < b.length; i += n) out.push(b.subarray(i, i + n));
  return out;
}

/** Cut `b` into pieces whose sizes cycle through `sizes`. */
function splitSizes(b: Buffer, sizes: number[]): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0, k = 0; i < b.length; k++) {
    const n = Math.max(1, sizes[k % sizes.length]);
    out.push(b.subarray(i, i + n));
    i += n;
  }
  return out;
}

/** Deterministic pseudo-random split (xorshift), sizes 1..max. */
function splitRandom(b: Buffer, seed: number, max: number): Buffer[] {
  let x = seed | 1;
  const sizes: number[] = [];
  for (let i = 0; i < 64; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    sizes.push(1 + ((x >>> 0) % max));
  }
  return splitSizes(b, sizes);
}

const L = (s: string): Buffer => Buffer.from(s, 'latin1');

function plain(r: HttpRequest) {
  return {
    method: r.method,
    target: r.target,
    minorVersion: r.minorVersion,
    headers: r.headers,
    body: r.body.toString('latin1'),
    chunked: r.chunked,
    trailers: r.trailers,
    ...(r.authority !== undefined ? { authority: r.authority } : {}),
  };
}

/** What must not depend on how the stream was cut. */
function summary(o: Outcome) {
  return { requests: o.requests.map(plain), order: o.order, lost: o.lost, skipped: o.skipped };
}

function checkCase(c: Case, o: Outcome): void {
  assert.equal(o.requests.length, c.requests.length, `request count; order: ${o.order.join(', ')}`);
  c.requests.forEach((exp, i) => {
    const got = plain(o.requests[i]);
    for (const k of Object.keys(exp) as (keyof typeof exp)[]) assert.deepEqual(got[k], exp[k], `request ${i} ${k}`);
    assert.ok(Buffer.isBuffer(o.requests[i].body));
  });
  assert.deepEqual(o.lost, c.drops ?? {});
  assert.equal(o.skipped, expectedSkipped(c), `skipped bytes ${JSON.stringify(o.skippedBy)}`);
}

// ---- corpus: exact outcome in one push, and the same outcome however the stream is cut ----

describe('corpus', () => {
  for (const c of CASES) {
    it(c.name, () => {
      const wire = wireBytes(c);
      const opts: RunOpts = { midstream: c.midstream, limits: c.limits, end: c.end };
      const whole = run([wire], opts);
      checkCase(c, whole);
      const expected = summary(whole);
      assert.deepEqual(summary(run(splitEvery(wire, 1), opts)), expected, '1-byte pieces');
      for (const seed of [1, 7, 42, 1234]) {
        assert.deepEqual(summary(run(splitRandom(wire, seed, 16), opts)), expected, `random split ${seed}`);
      }
    });
  }
});

// ---- sizes ----

describe('large messages with the default limits', () => {
  const bigBody = Buffer.alloc(2 * 1024 * 1024);
  for (let i = 0; i < bigBody.length; i++) bigBody[i] = (i * 31 + (i >>> 9)) & 0xff;

  it('2 MiB Content-Length body, one push and 1448-byte segments', () => {
    const wire = Buffer.concat([L(`POST /upload HTTP/1.1\r\nContent-Length: ${bigBody.length}\r\n\r\n`), bigBody, L('GET /after HTTP/1.1\r\n\r\n')]);
    for (const steps of [[wire], splitEvery(wire, 1448)]) {
      const o = run(steps);
      assert.equal(o.requests.length, 2);
      assert.ok(o.requests[0].body.equals(bigBody));
      assert.equal(o.requests[1].target, '/after');
      assert.equal(o.skipped, 0);
    }
  });

  it('2 MiB chunked body in 64 KiB chunks over 1448-byte segments', () => {
    const parts: Buffer[] = [L('POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n')];
    for (let i = 0; i < bigBody.length; i += 65536) {
      const piece = bigBody.subarray(i, i + 65536);
      parts.push(L(`${piece.length.toString(16)}\r\n`), piece, L('\r\n'));
    }
    parts.push(L('0\r\n\r\n'));
    const o = run(splitEvery(Buffer.concat(parts), 1448));
    assert.equal(o.requests.length, 1);
    assert.ok(o.requests[0].body.equals(bigBody));
    assert.equal(o.requests[0].chunked, true);
  });

  it('8 KB request target and 16 KB cookie', () => {
    const target = `/search?q=${'x'.repeat(8 * 1024)}`;
    const cookie = Array.from({ length: 800 }, (_, i) => `c${i}=${'v'.repeat(16)}`).join('; ');
    assert.ok(cookie.length > 16 * 1024);
    const wire = L(`GET ${target} HTTP/1.1\r\nHost: h\r\nCookie: ${cookie}\r\n\r\n`);
    for (const steps of [[wire], splitEvery(wire, 1448), splitEvery(wire, 1)]) {
      const o = run(steps);
      assert.equal(o.requests.length, 1);
      assert.equal(o.requests[0].target, target);
      assert.deepEqual(o.requests[0].headers, ['Host', 'h', 'Cookie', cookie]);
    }
  });
});

// ---- gaps, end, upgrade, buffering ----

const GET_A = 'GET /a HTTP/1.1\r\nHost: h\r\n\r\n';
const GET_B = 'GET /b HTTP/1.1\r\nHost: h\r\n\r\n';

describe('gaps', () => {
  it('inside a header section: that request is lost, the next one is replayed', () => {
    const o = run([L('GET /a HTTP/1.1\r\nHo'), { gap: 10 }, L('ue\r\n\r\n' + GET_B)]);
    assert.deepEqual(o.order, ['drop stream_gap', 'req GET /b']);
    assert.equal(o.skipped, 'GET /a HTTP/1.1\r\nHo'.length + 'ue\r\n\r\n'.length);
  });

  it('inside a request line', () => {
    const o = run([L('GET /a'), { gap: 3 }, L('TP/1.1\r\n\r\n' + GET_B)]);
    assert.deepEqual(o.order, ['drop stream_gap', 'req GET /b']);
  });

  it('between requests: the lost bytes started a request, counted once', () => {
    const o = run([L(GET_A), { gap: 40 }, L(GET_B)]);
    assert.deepEqual(o.order, ['req GET /a', 'drop stream_gap', 'req GET /b']);
    assert.equal(o.skipped, 0);
    // Same on a connection picked up midstream once it is in sync; not while still resyncing.
    assert.deepEqual(run([L('y\r\n' + GET_A), { gap: 40 }, L(GET_B)], { midstream: true }).order, ['req GET /a', 'drop stream_gap', 'req GET /b']);
    assert.deepEqual(run([L('xyz'), { gap: 40 }, L(GET_B)], { midstream: true }).order, ['req GET /b']);
  });

  it('between requests, ending mid-request: the request it cut is counted once, its tail skipped', () => {
    const o = run([L(GET_A), { gap: 12 }, L('Host: h\r\n\r\n' + GET_B)]);
    assert.deepEqual(o.order, ['req GET /a', 'drop stream_gap', 'req GET /b']);
    assert.deepEqual(o.skippedBy, { stream_gap: 0, http_midstream_skipped: 'Host: h\r\n\r\n'.length });
  });

  it('inside a Content-Length body it covers: dropped, next request parsed without a resync scan', () => {
    const head = 'POST /p HTTP/1.1\r\nContent-Length: 20\r\n\r\n';
    // The bytes after the gap look like a request line; they are body, and must be skipped by length.
    const o = run([L(head + 'abcde'), { gap: 5 }, L('GET /fake HTTP/1.1\r\n'.slice(0, 10) + GET_B)]);
    assert.deepEqual(o.order, ['drop stream_gap', 'req GET /b']);
    assert.equal(o.skippedBy.stream_gap, head.length + 5 + 10);
    assert.equal(o.skippedBy.http_midstream_skipped, undefined);
  });

  it('gap ending exactly at the end of a Content-Length body', () => {
    const o = run([L('POST /p HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc'), { gap: 7 }, L(GET_B)]);
    assert.deepEqual(o.order, ['drop stream_gap', 'req GET /b']);
  });

  it('inside a Content-Length body, running past its end: the request begun in the gap is counted too, then resync', () => {
    const o = run([L('POST /p HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc'), { gap: 30 }, L('t: h\r\n\r\n' + GET_B)]);
    assert.deepEqual(o.order, ['drop stream_gap', 'drop stream_gap', 'req GET /b']);
    assert.deepEqual(o.lost, { stream_gap: 2 });
  });

  it('a gap between requests is sized by the connection\'s mean request: uniform keep-alive loses exactly what the gap held', () => {
    const o = run([L(GET_A + GET_A + GET_A), { gap: 5 * GET_A.length }, L(GET_B)]);
    assert.deepEqual(o.lost, { stream_gap: 5 });
    assert.equal(o.requests.length, 4);
    // Nothing seen yet to size it by: at least the one it must have held.
    assert.deepEqual(run([{ gap: 500 }, L(GET_B)]).lost, { stream_gap: 1 });
  });

  it('inside chunk data it covers: stays in sync through the chunked framing', () => {
    const o = run([
      L('POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123'),
      { gap: 8 },
      L('CDEF\r\n3\r\nxyz\r\n0\r\n\r\n' + GET_B),
    ]);
    assert.deepEqual(o.order, ['drop stream_gap', 'req GET /b']);
    assert.equal(o.skippedBy.http_midstream_skipped, undefined);
  });

  it('inside a chunk-size line: resync', () => {
    const o = run([L('POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1'), { gap: 2 }, L('\r\nxyz\r\n0\r\n\r\n' + GET_B)]);
    assert.deepEqual(o.order, ['drop stream_gap', 'req GET /b']);
  });

  it('during a midstream scan, and a second gap in a dropped body', () => {
    const o = run([L('tail of something'), { gap: 5 }, L(GET_A + 'POST /x HTTP/1.1\r\nContent-Length: 9\r\n\r\n1'), { gap: 2 }, { gap: 3 }, L('xyz' + GET_B)], {
      midstream: true,
    });
    assert.deepEqual(o.order, ['req GET /a', 'drop stream_gap', 'req GET /b']);
  });
});

describe('end of connection', () => {
  it('mid-request: http_incomplete with the bytes seen', () => {
    const partial = 'POST /p HTTP/1.1\r\nContent-Length: 100\r\n\r\nsome';
    const o = run([L(GET_A + partial)]);
    assert.deepEqual(o.order, ['req GET /a', 'drop http_incomplete']);
    assert.deepEqual(o.skippedBy, { http_incomplete: partial.length });
  });

  it('mid request line and mid chunked body', () => {
    assert.deepEqual(run([L('GE')]).lost, { http_incomplete: 1 });
    assert.deepEqual(run([L('POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab')]).lost, { http_incomplete: 1 });
    assert.deepEqual(run([L('POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: v\r\n')]).lost, { http_incomplete: 1 });
  });

  it('empty state drops nothing; end() twice is harmless; pushes after end are ignored', () => {
    const events: string[] = [];
    const p = new HttpRequestParser({ onRequest: () => events.push('req'), onDrop: (r) => events.push(r) });
    p.end();
    p.end();
    p.push(L(GET_A), 0, GET_A.length);
    assert.equal(events.length, 0);
    const q = new HttpRequestParser({ onRequest: () => events.push('req'), onDrop: (r) => events.push(r) });
    q.push(L(GET_A), 0, GET_A.length);
    q.end();
    assert.deepEqual(events, ['req']);
  });
});

describe('upgrade', () => {
  it('everything after CONNECT is counted as http_upgrade: requests still delimited, bytes otherwise', () => {
    const head = 'CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n';
    const o = run([L(head + 'abc'), { gap: 100 }, L(GET_B), L('\x17\x03\x03')]);
    // GET_B starts right after a gap, so it is delimited: counted as a request, never replayed.
    assert.deepEqual(o.order, ['drop http_upgrade', 'drop http_upgrade']);
    assert.deepEqual(o.skippedBy, { http_upgrade: head.length + 3 + GET_B.length + 3 });
  });

  // With the server's side in the capture (peer), its answer decides whether the connection left HTTP/1.1.
  const SEEN = { peer: L('') };
  const CONNECT = 'CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n';
  const WS = 'GET /chat HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n';
  const answer = (s: string) => ({ peer: L(s) });

  it('a refused CONNECT or Upgrade leaves the connection in HTTP/1.1: what follows is replayed', () => {
    for (const [head, reply] of [
      [CONNECT, 'HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n'],
      [CONNECT, 'HTTP/1.0 403 Forbidden\r\n\r\n'],
      [WS, 'HTTP/1.1 400 Bad Request\r\n\r\n'],
      [WS, 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi'], // the server ignored Upgrade
      [WS, 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 426 Upgrade Required\r\n\r\n'],
    ]) {
      const o = run([SEEN, L(head + GET_A.slice(0, 9)), answer(reply), L(GET_A.slice(9) + GET_B)]);
      assert.deepEqual(o.order, ['drop http_upgrade', 'req GET /a', 'req GET /b'], `${head} ${reply}`);
      // The answer arriving after all the client bytes, and split at every byte.
      const late = run([SEEN, L(head + GET_A), ...splitEvery(L(reply), 1).map((b) => ({ peer: b })), L(GET_B)]);
      assert.deepEqual(late.order, ['drop http_upgrade', 'req GET /a', 'req GET /b'], `late ${reply}`);
    }
  });

  it('an accepted CONNECT or Upgrade counts the rest as http_upgrade', () => {
    for (const [head, reply] of [
      [CONNECT, 'HTTP/1.1 200 Connection established\r\n\r\n'],
      [WS, 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n'],
      [WS, 'HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 101 Switching Protocols\r\n\r\n'],
      [WS, '\x16\x03\x01 not http at all'],
    ]) {
      const o = run([SEEN, L(head + GET_A), answer(reply), L(GET_B)]);
      assert.equal(o.requests.length, 0, reply);
      assert.deepEqual(o.lost, { http_upgrade: 3 }, reply);
      assert.equal(o.skipped, head.length + GET_A.length + GET_B.length);
    }
  });

  it('without an answer the switch is assumed: no server side, a gap, the end, or too much held', () => {
    assert.deepEqual(run([L(CONNECT + GET_A)]).order, ['drop http_upgrade', 'drop http_upgrade']);
    assert.deepEqual(run([SEEN, L(CONNECT + GET_A), { gap: 5 }, L(GET_B)]).order, ['drop http_upgrade', 'drop http_upgrade', 'drop http_upgrade']);
    const ended = run([SEEN, L(CONNECT + GET_A)]);
    assert.deepEqual(ended.order, ['drop http_upgrade', 'drop http_upgrade']);
    assert.equal(ended.skipped, CONNECT.length + GET_A.length);
    const big = run([SEEN, L(CONNECT), ...Array.from({ length: 70 }, () => L('x'.repeat(1000))), answer('HTTP/1.1 403 No\r\n\r\n'), L(GET_B)]);
    assert.equal(big.requests.length, 0);
    assert.ok(big.maxBuffered <= 64 * 1024, `held ${big.maxBuffered}`);
  });
});

describe('buffering is bounded by the limits', () => {
  const limits = { maxRequestLineBytes: 1024, maxHeaderBytes: 4096, maxHeaderCount: 50, maxBodyBytes: 8192 };

  it('a header section that never ends stops growing at maxHeaderBytes', () => {
    const junk = L('GET / HTTP/1.1\r\n' + 'X-Filler: yes\r\n'.repeat(20000));
    const o = run(splitEvery(junk, 1448), { limits });
    assert.ok(o.maxBuffered <= limits.maxRequestLineBytes + 2 + limits.maxHeaderBytes, `max ${o.maxBuffered}`);
    assert.deepEqual(o.lost, { http_headers_too_large: 1 });
    assert.equal(o.bufferedAfterEachPush.at(-1), 0);
    assert.equal(o.skipped, junk.length);
  });

  it('a request line that never ends stops at maxRequestLineBytes', () => {
    const o = run(splitEvery(L('GET /' + 'a'.repeat(100000)), 1000), { limits });
    assert.ok(o.maxBuffered <= limits.maxRequestLineBytes, `max ${o.maxBuffered}`);
    assert.deepEqual(o.lost, { http_line_too_long: 1 });
  });

  it('a midstream candidate line never exceeds maxRequestLineBytes', () => {
    const o = run(splitEvery(L('x\r\nGET /' + 'a'.repeat(100000)), 999), { limits, midstream: true });
    assert.ok(o.maxBuffered <= limits.maxRequestLineBytes, `max ${o.maxBuffered}`);
    assert.deepEqual(o.lost, {});
  });

  it('body pieces are held until the request completes, then released', () => {
    const o = run([L('POST / HTTP/1.1\r\nContent-Length: 6000\r\n\r\n'), L('a'.repeat(3000)), L('a'.repeat(3000))], { limits });
    assert.deepEqual(o.bufferedAfterEachPush, [0, 3000, 0]);
    assert.equal(o.requests[0].body.length, 6000);
  });

  it('a long chunk extension is bounded', () => {
    const o = run(splitEvery(L('POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;' + 'e'.repeat(50000)), 700), { limits });
    assert.ok(o.maxBuffered <= limits.maxRequestLineBytes, `max ${o.maxBuffered}`);
    assert.deepEqual(o.lost, { http_ambiguous_framing: 1 });
  });
});

// ---- properties ----

const TCHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".split('');
const TARGET_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@/?%\xe9\xff".split('');
const VALUE_CHARS = [...TCHARS, ' ', '\t', '"', '(', ')', ',', '/', ':', ';', '<', '=', '>', '?', '@', '[', '\\', ']', '{', '}', '\x80', '\xa0', '\xff'];
const FRAMING_NAMES = new Set(['content-length', 'transfer-encoding', 'connection', 'upgrade']);

const randomCase = (s: string) =>
  fc.array(fc.boolean(), { minLength: s.length, maxLength: s.length }).map((flips) =>
    s
      .split('')
      .map((ch, i) => (flips[i] ? ch.toUpperCase() : ch.toLowerCase()))
      .join(''),
  );
const ows = fc.constantFrom('', ' ', '\t', ' \t ');

const fieldArb = fc.record({
  name: fc.string({ unit: fc.constantFrom(...TCHARS), minLength: 1, maxLength: 16 }).filter((n) => !FRAMING_NAMES.has(n.toLowerCase())),
  value: fc.string({ unit: fc.constantFrom(...VALUE_CHARS), maxLength: 24 }).map((v) => v.replace(/^[ \t]+|[ \t]+$/g, '')),
  pre: ows,
  post: ows,
});

const chunkExtArb = fc.constantFrom('', ';a', ';a=b', ' ; n="q \\" ;"', ';x=1;y');

const requestArb = fc
  .record({
    leading: fc.constantFrom('', '', '\r\n'),
    method: fc.oneof(
      fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'TRACE', 'PATCH', 'PROPFIND', 'M-SEARCH'),
      fc.string({ unit: fc.constantFrom(...TCHARS), minLength: 1, maxLength: 20 }),
    ),
    target: fc.string({ unit: fc.constantFrom(...TARGET_CHARS), maxLength: 40 }).map((t) => `/${t}`),
    minor: fc.constantFrom(0, 1),
    fields: fc.array(fieldArb, { maxLength: 8 }),
    framing: fc.constantFrom('none', 'cl', 'chunked'),
    framingName: fc.oneof(randomCase('content-length'), randomCase('transfer-encoding')),
    body: fc.uint8Array({ maxLength: 300 }),
    cuts: fc.array(fc.nat({ max: 300 }), { maxLength: 5 }),
    exts: fc.array(chunkExtArb, { minLength: 7, maxLength: 7 }),
    upperHex: fc.boolean(),
    trailers: fc.array(fieldArb, { maxLength: 3 }),
    framingPos: fc.nat(),
    // Mostly persistent, so that most runs carry several replayed requests.
    connection: fc.constantFrom(null, null, null, 'keep-alive', 'Keep-Alive', 'close'),
  })
  .map((g) => {
    const framing = g.framing === 'chunked' && g.minor === 0 ? 'cl' : g.framing;
    const bodyStr = Buffer.from(g.body).toString('latin1');
    const fields = g.fields.map((f) => [f.name, f.value, `${f.name}:${f.pre}${f.value}${f.post}\r\n`]);
    if (framing !== 'none') {
      const name = framing === 'cl' ? `Content-Length` : `Transfer-Encoding`;
      const cased = g.framingName.length === name.length ? g.framingName : name;
      const value = framing === 'cl' ? String(g.body.length) : 'chunked';
      fields.splice(g.framingPos % (fields.length + 1), 0, [cased, value, `${cased}: ${value}\r\n`]);
    }
    // HTTP/1.0 is persistent only with keep-alive (RFC 9112 §9.3).
    const connection = g.minor === 0 && g.connection === null ? 'keep-alive' : g.connection;
    if (connection !== null) fields.push(['Connection', connection, `Connection: ${connection}\r\n`]);
    const last = connection === 'close';
    let wire = `${g.leading}${g.method} ${g.target} HTTP/1.${g.minor}\r\n${fields.map((f) => f[2]).join('')}\r\n`;
    let body = '';
    const trailers: string[] = [];
    if (framing === 'cl') {
      wire += bodyStr;
      body = bodyStr;
    } else if (framing === 'chunked') {
      const cuts = [...new Set(g.cuts.map((c) => c % (bodyStr.length + 1)))].sort((a, b) => a - b);
      let prev = 0;
      for (const [i, c] of [...cuts, bodyStr.length].entries()) {
        if (c === prev) continue;
        const size = (c - prev).toString(16);
        wire += `${g.upperHex ? size.toUpperCase() : size}${g.exts[i % 7]}\r\n${bodyStr.slice(prev, c)}\r\n`;
        prev = c;
      }
      wire += `0${g.exts[6]}\r\n`;
      for (const t of g.trailers) {
        wire += `${t.name}:${t.pre}${t.value}${t.post}\r\n`;
        trailers.push(t.name, t.value);
      }
      wire += '\r\n';
      body = bodyStr;
    }
    const expected = {
      method: g.method,
      target: g.target,
      minorVersion: g.minor,
      headers: fields.flatMap((f) => [f[0], f[1]]),
      body,
      chunked: framing === 'chunked',
      trailers,
    };
    return { wire, expected, last };
  });

/** Requests up to the connection's last one are replayed; those after it only counted. */
function byClose(reqs: { wire: string; expected: object; last: boolean }[]) {
  const n = reqs.findIndex((r) => r.last) + 1 || reqs.length;
  const after = reqs.slice(n);
  return {
    expected: reqs.slice(0, n).map((r) => r.expected),
    lost: after.length ? { http_after_close: after.length } : {},
    skipped: after.reduce((k, r) => k + r.wire.length, 0),
  };
}

const sizesArb = fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 16 });

describe('properties', () => {
  it('valid requests cut anywhere parse exactly as generated up to the last one of the connection; the rest is counted', () => {
    fc.assert(
      fc.property(fc.array(requestArb, { minLength: 1, maxLength: 6 }), sizesArb, (reqs, sizes) => {
        const wire = L(reqs.map((r) => r.wire).join(''));
        const { expected, lost, skipped } = byClose(reqs);
        const whole = run([wire]);
        assert.deepEqual(whole.requests.map(plain), expected);
        assert.deepEqual(whole.lost, lost);
        assert.equal(whole.skipped, skipped);
        assert.deepEqual(summary(run(splitSizes(wire, sizes))), summary(whole));
        assert.deepEqual(summary(run(splitEvery(wire, 1))), summary(whole));
      }),
      { numRuns: 300 },
    );
  });

  it('midstream pickup after arbitrary bytes finds every following request and skips exactly the prefix', () => {
    // No CR in the prefix, so the only possible request start before the requests is the stream start.
    const prefixArb = fc
      .uint8Array({ maxLength: 200 })
      .map((b) => Buffer.from(b.filter((x) => x !== 13)).toString('latin1') + '\r\n')
      .filter((s) => !/^[A-Z][A-Z_-]{0,19} [^\x00-\x20\x7f]+ HTTP\/1\.[01]\r\n$/.test(s.split('\n')[0] + '\n'));
    fc.assert(
      fc.property(prefixArb, fc.array(requestArb, { minLength: 1, maxLength: 4 }), sizesArb, (prefix, reqs, sizes) => {
        // A resync only takes upper-case methods; after that the parser is strict again.
        fc.pre(/^[A-Z][A-Z_-]* /.test(reqs[0].wire));
        const wire = L(prefix + reqs.map((r) => r.wire).join(''));
        const { expected, lost, skipped } = byClose(reqs);
        for (const steps of [[wire], splitSizes(wire, sizes)]) {
          const o = run(steps, { midstream: true });
          assert.deepEqual(o.requests.map(plain), expected);
          assert.deepEqual(o.lost, lost);
          assert.equal(o.skipped, prefix.length + skipped);
        }
      }),
      { numRuns: 200 },
    );
  });

  const FRAGMENTS = [
    'GET ', 'POST ', 'CONNECT ', '/ ', '/x ', 'HTTP/1.1', 'HTTP/1.0', '\r\n', '\r\n\r\n', '\r', '\n', ' ', '\t', ':',
    'Host: h', 'Content-Length: ', 'Content-Length: 5', 'Transfer-Encoding: chunked', 'Connection: upgrade', 'Upgrade: ws',
    '0', '5', 'ff', 'fffffffffffffff', ';a="b"', 'hello', '\x00', '\x7f', '\xff', 'GET / HTTP/1.1\r\n\r\n',
    'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n', 'POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\n',
  ];
  const streamArb = fc
    .array(fc.oneof(fc.constantFrom(...FRAGMENTS), fc.uint8Array({ maxLength: 12 }).map((b) => Buffer.from(b).toString('latin1'))), {
      maxLength: 60,
    })
    .map((a) => L(a.join('')));
  const smallLimits = { maxRequestLineBytes: 64, maxHeaderBytes: 128, maxHeaderCount: 4, maxBodyBytes: 64 };

  it('any byte stream gives the same outcome however it is cut, and every byte is accounted for once', () => {
    fc.assert(
      fc.property(streamArb, sizesArb, fc.boolean(), (wire, sizes, midstream) => {
        const whole = run([wire], { limits: smallLimits, midstream });
        const cut = run(splitSizes(wire, sizes), { limits: smallLimits, midstream });
        assert.deepEqual(summary(cut), summary(whole));
        // Emitted bytes + skipped bytes = pushed bytes; emitted requests are at least 16 bytes each.
        assert.ok(whole.skipped <= wire.length - 16 * whole.requests.length);
      }),
      { numRuns: 1000 },
    );
  });

  const REFUSED = new Set(['http_malformed', 'http_line_too_long', 'http_headers_too_large', 'http_ambiguous_framing'].map((r) => `drop ${r}`));
  /** A head a strict server refuses (400), with what a lenient one may read as framing. */
  const refusedHeadArb = fc.constantFrom(
    'GET / HTTP/1.1\r\nDummy: x\nContent-Length: 23\r\n\r\n',
    'POST / HTTP/1.1\r\nFoo: bar\r\n Content-Length: 21\r\n\r\n',
    'POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n',
    'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n',
    'POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n',
    'GET /\x00 HTTP/1.1\r\n\r\n',
    'GET / HTTP/1.1\r\nHost : h\r\n\r\n',
    'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
  );

  it('after a refused request nothing on the connection is replayed, however the bytes are cut', () => {
    fc.assert(
      fc.property(
        fc.array(requestArb, { maxLength: 3 }),
        refusedHeadArb,
        fc.array(requestArb, { minLength: 1, maxLength: 3 }),
        sizesArb,
        (before, refused, after, sizes) => {
          const wire = L([...before.map((r) => r.wire), refused, ...after.map((r) => r.wire)].join(''));
          const expected = byClose(before).expected;
          for (const steps of [[wire], splitSizes(wire, sizes)]) {
            const o = run(steps);
            assert.deepEqual(o.requests.map(plain), expected);
            // Every byte not replayed is counted once.
            const replayed = before.slice(0, expected.length).reduce((k, r) => k + r.wire.length, 0);
            assert.equal(o.skipped, wire.length - replayed);
          }
        },
      ),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(streamArb, sizesArb, fc.boolean(), (wire, sizes, midstream) => {
        const o = run(splitSizes(wire, sizes), { limits: smallLimits, midstream });
        const k = o.order.findIndex((e) => REFUSED.has(e));
        if (k >= 0) assert.ok(o.order.slice(k).every((e) => !e.startsWith('req ')), o.order.join(', '));
      }),
      { numRuns: 2000 },
    );
  });

  it('arbitrary bytes and gaps never throw, and buffering stays within the limits', () => {
    const bound = smallLimits.maxRequestLineBytes + 2 + smallLimits.maxHeaderBytes + smallLimits.maxBodyBytes;
    const stepArb = fc.oneof(
      { weight: 4, arbitrary: streamArb },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)) },
      { weight: 1, arbitrary: fc.integer({ min: 1, max: 100 }).map((gap) => ({ gap })) },
    );
    fc.assert(
      fc.property(fc.array(stepArb, { maxLength: 12 }), fc.boolean(), (steps, midstream) => {
        const o = run(steps, { limits: smallLimits, midstream });
        assert.ok(o.maxBuffered <= bound, `buffered ${o.maxBuffered}`);
        const pushed = steps.reduce((n, s) => n + (Buffer.isBuffer(s) ? s.length : 0), 0);
        assert.ok(o.skipped <= pushed);
      }),
      { numRuns: 1000 },
    );
  });
});

// ---- what reassembly tells the parser: gap causes, taint, stall ----

describe('reassembly signals', () => {
  const GET_A = 'GET /a HTTP/1.1\r\nHost: h\r\n\r\n';
  const GET_B = 'GET /b HTTP/1.1\r\nHost: h\r\n\r\n';

  it('a gap is dropped under the reason of its cause', () => {
    const causes: Array<[GapCause, HttpDropReason]> = [['lost', 'stream_gap'], ['truncated', 'stream_truncated'], ['flow_cap', 'stream_flow_cap'], ['memcap', 'stream_memcap']];
    for (const [cause, reason] of causes) {
      const o = run([L('GET /cut HT'), { gap: 10, cause }, L(`TP/1.1\r\n\r\n${GET_B}`)]);
      assert.deepEqual(o.order, [`drop ${reason}`, 'req GET /b'], cause);
      // In a body of known length the gap is stepped over in sync, still under its cause.
      const body = run([L('POST /p HTTP/1.1\r\nContent-Length: 20\r\n\r\n12345'), { gap: 10, cause }, L(`67890${GET_B}`)]);
      assert.deepEqual(body.order, [`drop ${reason}`, 'req GET /b'], cause);
      assert.deepEqual(body.skippedBy, { [reason]: 50 }, 'the head and body bytes, not the gap');
    }
  });

  it('taint drops the request in progress; the rest of the connection is only counted', () => {
    const tail = `34567890${GET_A}${GET_B}`;
    const o = run([L(`${GET_A}POST /x HTTP/1.1\r\nContent-Length: 10\r\n\r\n12`), { taint: true }, L(tail)]);
    // GET_A in the tail follows no CRLF (body bytes before it), GET_B does: one more counted request.
    assert.deepEqual(o.order, ['req GET /a', 'drop stream_overlap_conflict', 'drop stream_overlap_conflict']);
    assert.equal(o.skippedBy.stream_overlap_conflict, 'POST /x HTTP/1.1\r\nContent-Length: 10\r\n\r\n12'.length + tail.length);
  });

  it('taint between requests drops the next one (its bytes are the ambiguous ones)', () => {
    const o = run([L(GET_A), { taint: true }, L(`GET /evil HTTP/1.1\r\nHost: h\r\n\r\n${GET_B}`)]);
    // GET /evil counted once, at the taint; GET_B when delimited.
    assert.deepEqual(o.order, ['req GET /a', 'drop stream_overlap_conflict', 'drop stream_overlap_conflict']);
    assert.equal(o.requests.length, 1);
    // Counted even when the copy we got no longer looks like a request.
    const g = run([L(GET_A), { taint: true }, L(`gdt /evil HTTP/1.1\r\n\r\n`)]);
    assert.deepEqual(g.order, ['req GET /a', 'drop stream_overlap_conflict']);
  });

  it('a second taint changes nothing: the request in progress is dropped once, the next delimited one counted', () => {
    const o = run([L('GET /x HTTP/1.1\r\n'), { taint: true }, L('Host: h\r\n'), { taint: true }, L(`\r\n${GET_B}`)]);
    assert.deepEqual(o.order, ['drop stream_overlap_conflict', 'drop stream_overlap_conflict']);
    assert.equal(o.requests.length, 0);
  });

  it('taint while skipping a dropped body or resyncing drops nothing twice; later requests are only counted', () => {
    const o = run([L('POST /x HTTP/1.1\r\nContent-Length: 10\r\n\r\n12'), { gap: 3 }, { taint: true }, L(`67890\r\n${GET_B}`)]);
    assert.deepEqual(o.order, ['drop stream_gap', 'drop stream_overlap_conflict']);
    const m = run([L('ody bytes\r\nmore'), { taint: true }, L(`\r\n${GET_B}`)], { midstream: true });
    assert.deepEqual(m.order, ['drop stream_overlap_conflict']);
    assert.equal(m.skipped, 'ody bytes\r\nmore\r\n'.length + GET_B.length);
  });

  it('Expect: 100-continue whose body never comes is dropped on stall; the next request is replayed', () => {
    const head = 'PUT /big HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 1000\r\n\r\n';
    const o = run([L(head), { stalled: true }, L(GET_B)]);
    assert.deepEqual(o.order, ['drop http_expect_timeout', 'req GET /b']);
    assert.equal(o.skipped, head.length);
    // Chunked too.
    const c = run([L('POST /c HTTP/1.1\r\nExpect: 100-Continue\r\nTransfer-Encoding: chunked\r\n\r\n'), { stalled: true }, L(GET_B)]);
    assert.deepEqual(c.order, ['drop http_expect_timeout', 'req GET /b']);
  });

  it('stall changes nothing once the body started, or without Expect', () => {
    const head = 'PUT /big HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n';
    assert.deepEqual(run([L(head + 'bo'), { stalled: true }, L('dy')]).order, ['req PUT /big']);
    assert.deepEqual(run([L(head), { stalled: true }, { stalled: true }, L(GET_B)]).order, ['drop http_expect_timeout', 'req GET /b']);
    const noExpect = 'PUT /p HTTP/1.1\r\nContent-Length: 4\r\n\r\n';
    assert.deepEqual(run([L(noExpect), { stalled: true }, L('body')]).order, ['req PUT /p']);
    assert.deepEqual(run([L(GET_A), { stalled: true }, L(GET_B)]).order, ['req GET /a', 'req GET /b']);
  });

  it('a late body after the Expect timeout is skipped by the resync, never replayed', () => {
    const head = 'PUT /big HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 12\r\n\r\n';
    const o = run([L(head), { stalled: true }, L(`late body!\r\n${GET_B}`)]);
    assert.deepEqual(o.order, ['drop http_expect_timeout', 'req GET /b']);
  });

  it('pendingBytes covers the request in progress and is 0 between requests and while skipping', () => {
    const seen: number[] = [];
    const parser = new HttpRequestParser({ onRequest() {}, onDrop() {} });
    const push = (s: string) => {
      const b = L(s);
      parser.push(b, 0, b.length);
      seen.push(parser.pendingBytes);
    };
    push(GET_A);
    push('POST /x HTTP/1.1\r\nContent-Length: 4\r\n\r\n');
    push('ab');
    push('cd');
    push('GET /y');
    parser.gap(5);
    seen.push(parser.pendingBytes);
    push('junk');
    assert.deepEqual(seen, [0, 39, 41, 0, 6, 0, 0]);
  });
});
