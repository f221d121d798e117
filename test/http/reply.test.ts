/**
 * The reply framer alone: each acceptance rule of its header comment, its limits at the exact
 * byte, and the same events whatever the segment boundaries.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BODY_CHUNKED, BODY_CLOSE, BODY_LENGTH, BODY_NONE, BODY_SWITCH } from '../../src/http/grammar.js';
import { ReplyFramer, type ReplyFramerOptions } from '../../src/http/reply.js';
import { REPLY_CASES } from './reply-corpus.js';

type Event = ['head', number, number, string[]] | ['body', string] | ['end', boolean] | ['error', string];

interface Run {
  events: Event[];
  framer: ReplyFramer;
  /** end()'s result, when called. */
  clean?: boolean;
  /** Where each push() stopped, in order. */
  stops: number[];
}

/** Feeds `chunks`, pushing on after each answer like the digester; `methods`, one per final answer. */
function run(chunks: Buffer[], methods: string[] = [], opts: ReplyFramerOptions = {}, end = true): Run {
  const queue = [...methods];
  const events: Event[] = [];
  const r: Run = { events, framer: null!, stops: [] };
  r.framer = new ReplyFramer(
    {
      requestMethod: () => queue[0] ?? null,
      onHead: (h) => events.push(['head', h.status, h.framing, h.fields()]),
      onBody: (b, s, e) => {
        const last = events[events.length - 1];
        const text = b.toString('latin1', s, e);
        if (last?.[0] === 'body') last[1] += text;
        else events.push(['body', text]);
      },
      onEnd: (persistent) => {
        queue.shift();
        events.push(['end', persistent]);
      },
      onError: (reason) => events.push(['error', reason]),
    },
    opts,
  );
  for (const c of chunks) {
    let p = 0;
    while (p < c.length) {
      p = r.framer.push(c, p, c.length);
      r.stops.push(p);
    }
  }
  if (end) r.clean = r.framer.end();
  return r;
}

const b = (s: string) => Buffer.from(s, 'latin1');
const one = (wire: string, method = 'GET', opts: ReplyFramerOptions = {}) => run([b(wire)], [method], opts);
/** Every way to cut `wire` in two, and byte by byte: each must give `expect`. */
function splitsGive(wire: string, methods: string[], expect: Event[], opts: ReplyFramerOptions = {}): void {
  const w = b(wire);
  for (let k = 1; k < w.length; k++) assert.deepEqual(run([w.subarray(0, k), w.subarray(k)], methods, opts).events, expect, `cut at ${k}`);
  const bytes = Array.from({ length: w.length }, (_, i) => w.subarray(i, i + 1));
  assert.deepEqual(run(bytes, methods, opts).events, expect, 'byte by byte');
}

test('Content-Length body: head, body, end; the connection stays usable', () => {
  const r = one('HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\nX-A:  1 \r\nContent-Length: 5\r\n\r\nhello');
  assert.deepEqual(r.events, [['head', 201, BODY_LENGTH, ['Content-Type', 'text/plain', 'X-A', '1', 'Content-Length', '5']], ['body', 'hello'], ['end', true]]);
  assert.equal(r.clean, true);
});

test('Content-Length lists and repetitions of one value are valid; differing or empty elements are malformed', () => {
  for (const cl of ['Content-Length: 5, 5', 'Content-Length: 5,5\r\nContent-Length: 5', 'Content-Length: 005']) {
    assert.deepEqual(one(`HTTP/1.1 200 OK\r\n${cl}\r\n\r\nhello`).events.slice(1), [['body', 'hello'], ['end', true]], cl);
  }
  for (const cl of ['Content-Length: 5, 6', 'Content-Length: 5\r\nContent-Length: 6', 'Content-Length: 5,', 'Content-Length: ', 'Content-Length: -1', 'Content-Length: 1e3', 'Content-Length: 99999999999999999']) {
    assert.deepEqual(one(`HTTP/1.1 200 OK\r\n${cl}\r\n\r\nhello`).events, [['error', 'malformed']], cl);
  }
});

test('Transfer-Encoding wins over Content-Length (even an invalid one); the connection is then not reused', () => {
  const r = one('HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n');
  assert.deepEqual(r.events.slice(1), [['body', 'hello'], ['end', false]]);
  const bad = one('HTTP/1.1 200 OK\r\nContent-Length: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n');
  assert.deepEqual(bad.events.slice(1), [['end', false]]);
});

test('a final coding other than chunked, Transfer-Encoding in HTTP/1.0, or no length: read until close', () => {
  for (const wire of ['HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n', 'HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n', 'HTTP/1.1 200 OK\r\nX: y\r\n\r\n']) {
    const r = run([b(wire), b('0\r\n\r\nmore')], ['GET']);
    assert.equal(r.events[0][2], BODY_CLOSE, wire);
    assert.deepEqual(r.events.slice(1), [['body', '0\r\n\r\nmore'], ['end', false]], wire);
    assert.equal(r.clean, true);
  }
});

test('chunked: extensions, upper-case hex, trailers (checked, not kept), bare LF line ends', () => {
  const wire = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, CHUNKED\r\n\r\n5;a=1;b="q\\"x"\r\nhello\r\nA ; c\r\n0123456789\n0\r\nX-T: 1\r\nX-U: 2\r\n\r\n';
  splitsGive(wire, ['GET'], [['head', 200, BODY_CHUNKED, ['Transfer-Encoding', 'gzip, CHUNKED']], ['body', 'hello0123456789'], ['end', true]]);
  for (const [bad, why] of [['5 \r\nhello\r\n0\r\n\r\n', 'space after size'], ['5;\r\nhello\r\n0\r\n\r\n', 'empty extension'], ['zz\r\n', 'not hex'], ['5\r\nhelloX\r\n', 'no line end after data'], ['0\r\nBad Trailer: 1\r\n\r\n', 'bad trailer name'], ['0\r\n leading: ws\r\n\r\n', 'obs-fold before any trailer']]) {
    const ev = one(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${bad}`).events;
    assert.deepEqual(ev[ev.length - 1], ['error', 'malformed'], why);
    assert.ok(!ev.some((e) => e[0] === 'end'), why);
  }
});

test('HEAD, 204 and 304 end with the head, whatever their fields say; 1xx are skipped; 101 and 2xx to CONNECT switch', () => {
  const wire =
    'HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n' + // HEAD
    'HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n' +
    'HTTP/1.1 304 Not Modified\r\nContent-Length: x\r\nTransfer-Encoding: chunked\r\n\r\n' +
    'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok' +
    'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello';
  const expect: Event[] = [
    ['head', 200, BODY_NONE, ['Content-Length', '1000']], ['end', true],
    ['head', 204, BODY_NONE, ['Content-Length', '7']], ['end', true],
    ['head', 304, BODY_NONE, ['Content-Length', 'x', 'Transfer-Encoding', 'chunked']], ['end', true],
    ['head', 200, BODY_LENGTH, ['Content-Length', '2']], ['body', 'ok'], ['end', true],
    ['head', 101, BODY_SWITCH, ['Upgrade', 'websocket']], ['end', false],
  ];
  splitsGive(wire, ['HEAD', 'DELETE', 'GET', 'POST', 'GET'], expect);
  const tunnel = one('HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x01', 'CONNECT');
  assert.deepEqual(tunnel.events, [['head', 200, BODY_SWITCH, []], ['end', false]]);
  assert.equal(tunnel.framer.stopped, true);
  assert.equal(tunnel.clean, true);
});

test('obs-fold continues the previous field (one SP), also for framing fields; whitespace before the first field is malformed', () => {
  const r = one('HTTP/1.1 200 OK\r\nX-Long: a \r\n  b\r\n\tc\r\nContent-Length: 5,\r\n 5\r\nTransfer-Encoding:\r\n chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n');
  assert.deepEqual(r.events, [['head', 200, BODY_CHUNKED, ['X-Long', 'a b c', 'Content-Length', '5, 5', 'Transfer-Encoding', 'chunked']], ['body', 'hello'], ['end', false]]);
  assert.deepEqual(one('HTTP/1.1 200 OK\r\n X: 1\r\nContent-Length: 0\r\n\r\n').events, [['error', 'malformed']]);
});

test('line ends: bare LF accepted everywhere; a bare CR, NUL or other CTL in a line is malformed', () => {
  assert.deepEqual(one('HTTP/1.1 200 OK\nContent-Length: 2\nX: y\n\nok').events, [['head', 200, BODY_LENGTH, ['Content-Length', '2', 'X', 'y']], ['body', 'ok'], ['end', true]]);
  assert.deepEqual(one('HTTP/1.1 200 OK\r\nContent-Length: 0\n\r\n').events.slice(1), [['end', true]]);
  for (const wire of ['HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n', 'HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n', 'HTTP/1.1 200 OK\r\nX: a\x01\r\n\r\n', 'HTTP/1.1 200 O\rK\r\n\r\n', 'HTTP/1.1 200 OK\r\nX: \x7f\r\n\r\n']) {
    assert.deepEqual(one(wire).events, [['error', 'malformed']], JSON.stringify(wire));
  }
});

test('status lines: HTTP/1.0 and 1.1, three digits from 100, SP before a reason; empty lines before are skipped', () => {
  assert.deepEqual(one('\r\n\nHTTP/1.0 404\r\n\r\n').events, [['head', 404, BODY_CLOSE, []], ['end', false]]);
  assert.deepEqual(one('HTTP/1.1 599 \xe9t\xe9\r\nContent-Length: 0\r\n\r\n').events, [['head', 599, BODY_NONE, ['Content-Length', '0']], ['end', true]]);
  for (const line of ['HTTP/2 200', 'HTTP/1.2 200 OK', 'HTTP/1.1 099 X', 'HTTP/1.1 20 OK', 'HTTP/1.1 2000 OK', 'HTTP/1.1 200\tOK', 'http/1.1 200 OK', 'HTTP/1.1  200 OK', 'SSH-2.0-OpenSSH_9.2']) {
    assert.deepEqual(one(`${line}\r\nContent-Length: 0\r\n\r\n`).events, [['error', 'malformed']], line);
  }
  for (const f of ['Bad Name: x', 'Name : x', ': x', 'NoColon', 'N\xe9: x']) {
    assert.deepEqual(one(`HTTP/1.1 200 OK\r\n${f}\r\n\r\n`).events, [['error', 'malformed']], f);
  }
});

test('a server speaking another protocol fails at its first bytes, not at a line end or a timeout', () => {
  for (const [piece, failsNow] of [['SSH-2.0', true], ['HTTP/2', true], ['\x16\x03\x01', true], ['HTTP/1.1 2', false], ['HTTP/1.1 abc', false], ['HTTP/1.1 200 OK\r\nX', false]] as const) {
    const r = run([b(piece)], ['GET'], {}, false);
    assert.deepEqual(r.events, failsNow ? [['error', 'malformed']] : [], piece);
  }
  const late = run([b('HTTP/1.1 abc'), b('\r\n')], ['GET'], {}, false);
  assert.deepEqual(late.events, [['error', 'malformed']], 'an invalid status line fails at its end');
  // A bad status line wins over the head limit, however the stream is cut.
  const w = b(`HTTP/1.1 2x0 OK\r\nX: ${'a'.repeat(2000)}\r\n\r\n`);
  for (let k = 1; k < 40; k++) assert.deepEqual(run([w.subarray(0, k), w.subarray(k)], ['GET'], { maxHeadBytes: 1024 }).events, [['error', 'malformed']], `cut at ${k}`);
  assert.deepEqual(run([w], ['GET'], { maxHeadBytes: 1024 }).events, [['error', 'malformed']]);
});

test('persistence: HTTP/1.1 without Connection: close only', () => {
  const persistent = (wire: string) => one(wire).events.find((e) => e[0] === 'end')?.[1];
  assert.equal(persistent('HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 0\r\n\r\n'), false);
  assert.equal(persistent('HTTP/1.1 200 OK\r\nConnection:\r\n close\r\nContent-Length: 0\r\n\r\n'), false);
  assert.equal(persistent('HTTP/1.1 200 OK\r\nConnection: closed\r\nContent-Length: 0\r\n\r\n'), true);
  assert.equal(persistent('HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n'), false);
});

test('limits fail at the byte that passes them, however the stream is cut', () => {
  const base = 'HTTP/1.1 200 OK\r\nX: \r\nContent-Length: 0\r\n\r\n';
  const head = (size: number) => base.replace('X: ', `X: ${'a'.repeat(size - base.length)}`);
  assert.equal(head(1024).length, 1024);
  splitsGive(head(1024), ['GET'], [['head', 200, BODY_NONE, ['X', 'a'.repeat(1024 - base.length), 'Content-Length', '0']], ['end', true]], { maxHeadBytes: 1024 });
  splitsGive(head(1025), ['GET'], [['error', 'head_too_large']], { maxHeadBytes: 1024 });
  // A chunk line may be 4096 bytes with its CRLF.
  const line = (size: number) => `1;e=${'x'.repeat(size - 6)}\r\n`;
  const chunked = (l: string) => `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${l}a\r\n0\r\n\r\n`;
  assert.deepEqual(one(chunked(line(4096))).events.slice(1), [['body', 'a'], ['end', true]]);
  for (const k of [40, 2000, 4000, 4100]) {
    const w = b(chunked(line(4097)));
    assert.deepEqual(run([w.subarray(0, k), w.subarray(k)], ['GET']).events.slice(1), [['error', 'malformed']], `4097, cut at ${k}`);
    const ok = b(chunked(line(4096)));
    assert.deepEqual(run([ok.subarray(0, k), ok.subarray(k)], ['GET']).events.slice(1), [['body', 'a'], ['end', true]], `4096, cut at ${k}`);
  }
  const bigTrailer = `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: ${'t'.repeat(70_000)}\r\n\r\n`;
  assert.deepEqual(one(bigTrailer).events.slice(1), [['error', 'head_too_large']]);
});

test('push() stops after each answer; end() says whether one was cut short', () => {
  const two = 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 204 No Content\r\n\r\n';
  const r = run([b(two)], ['GET', 'GET']);
  assert.deepEqual(r.stops, [39, two.length]);
  assert.equal(r.clean, true);
  assert.equal(run([b('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nab')]).clean, false);
  assert.equal(run([b('HTTP/1.1 200 OK\r\nContent-')]).clean, false);
  assert.equal(run([b('\r\n')]).clean, true, 'only empty lines: nothing was cut');
});

test('a hole inside a body of known length is stepped over; pendingBytes counts the answer in progress', () => {
  const r = run([], ['GET', 'GET'], {}, false);
  const f = r.framer;
  const a = b('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\nabc');
  f.push(a, 0, a.length);
  assert.equal(f.pendingBytes, a.length);
  assert.equal(f.canStepOver(8), false);
  assert.equal(f.canStepOver(7), true);
  f.stepOver(7);
  const rest = b('\r\n0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n');
  const p = f.push(rest, 0, rest.length);
  assert.equal(f.pendingBytes, 0, 'between answers');
  f.push(rest, p, rest.length);
  assert.equal(f.pendingBytes, rest.length - 7);
  f.stepOver(2);
  assert.deepEqual(r.events.slice(1), [['body', 'abc'], ['end', true], ['head', 200, BODY_LENGTH, ['Content-Length', '2']], ['end', true]]);
  f.stop();
  assert.equal(f.stopped, true);
  assert.equal(f.push(rest, 0, rest.length), rest.length, 'stopped: consumes everything');
  assert.equal(r.events.length, 5);
});

test('split anywhere: a pipelined mix gives the same events whatever the segment boundaries', () => {
  const wire = b(
    'HTTP/1.1 100 Continue\r\n\r\n' +
      'HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\nX-A: 1\r\n folded\r\n\r\nhello' +
      '\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nT: 1\r\n\r\n' +
      'HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n' + // HEAD
      'HTTP/1.1 304 Not Modified\nETag: "x"\n\n' +
      'HTTP/1.0 404 Not Found\r\n\r\nthe end',
  );
  const methods = ['POST', 'GET', 'HEAD', 'GET', 'GET'];
  const whole = run([wire], methods);
  assert.equal(whole.events.filter((e) => e[0] === 'end').length, 5);
  assert.ok(!whole.events.some((e) => e[0] === 'error'));
  fc.assert(
    fc.property(fc.uniqueArray(fc.integer({ min: 1, max: wire.length - 1 }), { maxLength: 40 }), (cuts) => {
      const at = [0, ...cuts.sort((x, y) => x - y), wire.length];
      assert.deepEqual(run(at.slice(1).map((e, i) => wire.subarray(at[i], e)), methods).events, whole.events);
    }),
    { numRuns: 300 },
  );
});

test('mutated answers: never a throw, the same events whatever the cuts, bounded buffering', () => {
  const seeds = REPLY_CASES.filter((c) => c.wire.length < 4096).map((c) => [b(c.wire), c.method ?? 'GET'] as const);
  const edit = fc.tuple(fc.nat(), fc.constantFrom('set', 'insert', 'delete'), fc.constantFrom(0, 9, 10, 13, 32, 44, 48, 58, 59, 65, 0x7f, 0xff));
  fc.assert(
    fc.property(fc.nat(seeds.length - 1), fc.array(edit, { minLength: 1, maxLength: 6 }), fc.uniqueArray(fc.nat(), { maxLength: 12 }), (si, edits, cutSeeds) => {
      const [seed, method] = seeds[si];
      const bytes = [...seed];
      for (const [at, op, v] of edits) {
        const i = at % (bytes.length + 1);
        if (op === 'set' && i < bytes.length) bytes[i] = v;
        else if (op === 'insert') bytes.splice(i, 0, v);
        else if (op === 'delete') bytes.splice(i, 1);
      }
      const wire = Buffer.from(bytes);
      const methods = [method, method, method, method];
      const whole = run([wire], methods, { maxHeadBytes: 512 });
      const cuts = [...new Set(cutSeeds.map((c) => 1 + (c % Math.max(1, wire.length - 1))))].filter((c) => c < wire.length).sort((x, y) => x - y);
      const at = [0, ...cuts, wire.length];
      let maxHeld = 0;
      const pieces = at.slice(1).map((e, i) => wire.subarray(at[i], e));
      const cut = run([], methods, { maxHeadBytes: 512 }, false);
      for (const piece of pieces) {
        let p = 0;
        while (p < piece.length) {
          p = cut.framer.push(piece, p, piece.length);
          maxHeld = Math.max(maxHeld, cut.framer.bufferedBytes);
        }
      }
      cut.clean = cut.framer.end();
      assert.deepEqual(cut.events, whole.events);
      assert.equal(cut.clean, whole.clean);
      assert.ok(maxHeld <= 64 * 1024, `held ${maxHeld}`);
      assert.ok(whole.events.filter((e) => e[0] === 'error').length <= 1, 'nothing after an error');
    }),
    { numRuns: 2000 },
  );
});
