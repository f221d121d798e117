import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { HttpResponseParser, type ResponseDigest, type ResponseParserOptions } from '../../src/http/response.js';

const sha = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');

interface Run {
  responses: ResponseDigest[];
  lost: Array<[string, boolean]>;
  tunnel: boolean;
  parser: HttpResponseParser;
}

/** Feeds `chunks` in order; `methods` are the requests' methods, consumed one per response. */
function run(chunks: Buffer[], methods: string[] = [], opts: ResponseParserOptions = {}, end = true): Run {
  const r: Run = { responses: [], lost: [], tunnel: false, parser: null! };
  const queue = [...methods];
  r.parser = new HttpResponseParser(
    {
      requestMethod: () => queue[0] ?? null,
      onResponse: (d) => {
        queue.shift();
        r.responses.push(d);
      },
      onLost: (reason, inSync) => {
        queue.shift();
        r.lost.push([reason, inSync]);
      },
      onTunnel: () => (r.tunnel = true),
    },
    opts,
  );
  for (const c of chunks) r.parser.push(c, 0, c.length);
  if (end) r.parser.end();
  return r;
}

const b = (s: string) => Buffer.from(s, 'latin1');
const summary = (d: ResponseDigest) => ({ status: d.status, len: d.bodyLength, sha: d.bodySha256 });

test('Content-Length body: status, headers lower-cased in order, length and hash', () => {
  const r = run([b('HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\nX-A:  1 \r\nContent-Length: 5\r\n\r\nhello')], ['POST']);
  assert.equal(r.responses.length, 1);
  const d = r.responses[0];
  assert.equal(d.status, 201);
  assert.equal(d.minorVersion, 1);
  assert.deepEqual(d.headers, ['content-type', 'text/plain', 'x-a', '1', 'content-length', '5']);
  assert.deepEqual(summary(d), { status: 201, len: 5, sha: sha('hello') });
  assert.deepEqual(r.lost, []);
});

test('chunked with extensions and trailers: the hash is of the de-chunked body', () => {
  const r = run([b('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 99\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n')], ['GET']);
  assert.deepEqual(summary(r.responses[0]), { status: 200, len: 11, sha: sha('hello world') });
});

test('HEAD, 204 and 304 have no body even with Content-Length; pipelined answers pair in order', () => {
  const wire =
    'HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n' + // HEAD
    'HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n' +
    'HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n' +
    'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';
  const r = run([b(wire)], ['HEAD', 'DELETE', 'GET', 'GET']);
  assert.deepEqual(r.responses.map((d) => [d.status, d.bodyLength]), [[200, 0], [204, 0], [304, 0], [200, 2]]);
});

test('1xx interim answers are skipped; 101 switches the connection away', () => {
  const r = run([b('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello')], ['POST', 'GET']);
  assert.deepEqual(r.responses.map((d) => d.status), [200, 101]);
  assert.equal(r.tunnel, true);
  assert.deepEqual(r.lost, []);
});

test('2xx to CONNECT is a tunnel', () => {
  const r = run([b('HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x01')], ['CONNECT']);
  assert.equal(r.responses.length, 1);
  assert.equal(r.tunnel, true);
});

test('no length: the body runs to the close (HTTP/1.0 and unknown Transfer-Encoding)', () => {
  const r = run([b('HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n<html>'), b('</html>')], ['GET']);
  assert.deepEqual(summary(r.responses[0]), { status: 200, len: 13, sha: sha('<html></html>') });
  assert.equal(r.responses[0].minorVersion, 0);
  const g = run([b('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxyz')], ['GET']);
  assert.deepEqual(summary(g.responses[0]), { status: 200, len: 3, sha: sha('xyz') });
});

test('malformed status line, bad Content-Length and conflicting lengths end parsing', () => {
  for (const wire of ['HTTP/2 200\r\n\r\n', 'HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n', 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n', 'HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n']) {
    const r = run([b(wire + 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n')], ['GET', 'GET']);
    assert.deepEqual(r.lost, [['malformed', false]], wire);
    assert.equal(r.responses.length, 0, wire);
  }
});

test('a hole inside a Content-Length body loses that response only; a hole elsewhere ends pairing', () => {
  const r = run([], ['GET', 'GET'], {}, false);
  const p = r.parser;
  const a = b('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc');
  p.push(a, 0, a.length);
  p.gap(4);
  const rest = b('xyzHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
  p.push(rest, 0, rest.length);
  assert.deepEqual(r.lost, [['gap', true]]);
  assert.deepEqual(r.responses.map(summary), [{ status: 200, len: 2, sha: sha('ok') }]);
  p.gap(5);
  assert.deepEqual(r.lost, [['gap', true], ['gap', false]]);
  const more = b('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
  p.push(more, 0, more.length);
  assert.equal(r.responses.length, 1, 'nothing after losing the place');
});

test('connection closed mid-body: incomplete', () => {
  const r = run([b('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc')], ['GET']);
  assert.deepEqual(r.lost, [['incomplete', false]]);
});

test('snippet and JSON capture are bounded; a large body is hashed, never held', () => {
  const big = Buffer.alloc(10 * 1024 * 1024, 0x61);
  const head = b(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${big.length}\r\n\r\n`);
  const r = run([], ['GET'], { snippetBytes: 16, captureJsonBytes: 1024 }, false);
  r.parser.push(head, 0, head.length);
  let maxHeld = 0;
  for (let off = 0; off < big.length; off += 65536) {
    r.parser.push(big, off, Math.min(65536, big.length - off));
    maxHeld = Math.max(maxHeld, r.parser.bufferedBytes);
  }
  const d = r.responses[0];
  assert.equal(d.bodyLength, big.length);
  assert.equal(d.bodySha256, sha(big));
  assert.equal(d.bodySnippet.toString(), 'a'.repeat(16));
  assert.equal(d.jsonBody, null, 'over the JSON cap: not kept');
  assert.ok(maxHeld <= 16 + 1024, `held at most the snippet and the JSON cap, held ${maxHeld}`);
  const j = run([b('HTTP/1.1 200 OK\r\nContent-Type: application/problem+json\r\nContent-Length: 7\r\n\r\n{"a":1}')], ['GET'], { captureJsonBytes: 1024 });
  assert.equal(j.responses[0].jsonBody?.toString(), '{"a":1}');
});

test('head section over the limit is refused, not buffered', () => {
  const r = run([b(`HTTP/1.1 200 OK\r\nX: ${'a'.repeat(5000)}\r\n\r\n`)], ['GET'], { maxHeadBytes: 1024 });
  assert.deepEqual(r.lost, [['head_too_large', false]]);
});

test('split anywhere: the same digests whatever the segment boundaries', () => {
  const wire = b(
    'HTTP/1.1 100 Continue\r\n\r\n' +
      'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\n\r\nhello' +
      '\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nT: 1\r\n\r\n' +
      'HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n' + // HEAD
      'HTTP/1.1 304 Not Modified\r\nETag: "x"\r\n\r\n' +
      'HTTP/1.0 404 Not Found\r\n\r\nthe end',
  );
  const methods = ['POST', 'GET', 'HEAD', 'GET', 'GET'];
  const whole = run([wire], methods);
  assert.equal(whole.responses.length, 5);
  assert.deepEqual(whole.lost, []);
  const expect = whole.responses.map((d) => ({ ...summary(d), headers: d.headers }));
  fc.assert(
    fc.property(fc.uniqueArray(fc.integer({ min: 1, max: wire.length - 1 }), { maxLength: 40 }), (cuts) => {
      const at = [0, ...cuts.sort((x, y) => x - y), wire.length];
      const chunks = at.slice(1).map((e, i) => wire.subarray(at[i], e));
      const r = run(chunks, methods);
      assert.deepEqual(r.responses.map((d) => ({ ...summary(d), headers: d.headers })), expect);
      assert.deepEqual(r.lost, []);
    }),
    { numRuns: 300 },
  );
});
