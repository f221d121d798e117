/**
 * HTTP/1.x request streams with the requests and drops they must produce. Shared by the parser
 * tests (one push, byte-at-a-time, random splits) and usable as a bench input.
 *
 * `wire` is a list of pieces: a string is bytes that end up in emitted requests, `bad(s)` marks
 * bytes that must be reported as skipped (in some onDrop) exactly once.
 */
import type { HttpDropReason, HttpParserLimits } from '../../src/http/types.js';

export interface Bad {
  bad: string;
}
export const bad = (s: string): Bad => ({ bad: s });

export interface ExpectedRequest {
  method: string;
  target: string;
  minorVersion?: number;
  headers?: string[];
  /** latin1 */
  body?: string;
  chunked?: boolean;
  trailers?: string[];
  authority?: string;
}

export interface Case {
  name: string;
  wire: (string | Bad)[];
  requests: ExpectedRequest[];
  /** Lost requests by reason (requests > 0 only). */
  drops?: Partial<Record<HttpDropReason, number>>;
  midstream?: boolean;
  limits?: Partial<HttpParserLimits>;
  /** Call end() after the last push (default true). */
  end?: boolean;
}

export function wireBytes(c: Case): Buffer {
  return Buffer.from(c.wire.map((w) => (typeof w === 'string' ? w : w.bad)).join(''), 'latin1');
}

export function expectedSkipped(c: Case): number {
  return c.wire.reduce((n, w) => n + (typeof w === 'string' ? 0 : Buffer.byteLength(w.bad, 'latin1')), 0);
}

const NEXT = 'GET /next HTTP/1.1\r\nHost: a\r\n\r\n';
const NEXT_REQ: ExpectedRequest = { method: 'GET', target: '/next', headers: ['Host', 'a'], body: '' };

/**
 * A refused request ends what we replay of its connection (RFC 9112 §9.6: a server closes after
 * refusing one): the valid request after it is counted, not replayed. A body we cannot frame is
 * scanned, so it must end with CRLF for the next request line to be found and counted.
 */
function rejects(name: string, badBytes: string, reason: HttpDropReason, limits?: Partial<HttpParserLimits>): Case {
  return { name, wire: [bad(badBytes), bad(NEXT)], requests: [], drops: { [reason]: 1, http_after_refused: 1 }, limits };
}

/** Over one of our limits but framed: the server read it, so we stay in sync and replay the next. */
function overLimit(name: string, badBytes: string, reason: HttpDropReason, limits: Partial<HttpParserLimits>): Case {
  return { name, wire: [bad(badBytes), NEXT], requests: [NEXT_REQ], drops: { [reason]: 1 }, limits };
}

const fortyHeaders: string[] = [];
for (let i = 0; i < 40; i++) {
  const names = ['X-Dup', 'x-dup', 'X-DUP', 'aCcEpT', 'X-Odd_Case.Name~1'];
  fortyHeaders.push(i === 0 ? 'Host' : names[i % names.length], i === 0 ? 'example.com' : `v${i} ,x`);
}

export const CASES: Case[] = [
  {
    name: 'simple GET',
    wire: ['GET / HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n'],
    requests: [
      {
        method: 'GET',
        target: '/',
        minorVersion: 1,
        headers: ['Host', 'example.com', 'User-Agent', 'curl/8.5.0', 'Accept', '*/*'],
        body: '',
        chunked: false,
        trailers: [],
      },
    ],
  },
  {
    name: 'POST with Content-Length',
    wire: ['POST /api/v1/items?x=1 HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{"a":"b\\r\\n"}'],
    requests: [{ method: 'POST', target: '/api/v1/items?x=1', body: '{"a":"b\\r\\n"}', chunked: false }],
  },
  {
    name: 'chunked with extensions and trailers',
    wire: [
      'POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n' +
        '5;name=value\r\nhello\r\n' +
        '7 ; a ; b="q\\"uo;ted" ;c=d\r\n, world\r\n' +
        'A\r\n0123456789\r\n' +
        '0;last\r\nX-Checksum: abc\r\nx-other:  two words \r\n\r\n',
    ],
    requests: [
      {
        method: 'POST',
        target: '/up',
        headers: ['Host', 'h', 'Transfer-Encoding', 'chunked'],
        body: 'hello, world0123456789',
        chunked: true,
        trailers: ['X-Checksum', 'abc', 'x-other', 'two words'],
      },
    ],
  },
  {
    name: 'chunked without trailers, upper-case hex, leading zeros',
    wire: ['PUT /f HTTP/1.1\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n000B\r\nhello world\r\n00\r\n\r\n'],
    requests: [{ method: 'PUT', target: '/f', body: 'hello world', chunked: true, trailers: [] }],
  },
  {
    name: 'pipelined mix in one push',
    wire: [
      'GET /a HTTP/1.1\r\nHost: h\r\n\r\n',
      'POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc',
      'POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nxy\r\n0\r\n\r\n',
      'HEAD /d HTTP/1.1\r\nHost: h\r\n\r\n',
      'DELETE /e HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n',
    ],
    requests: [
      { method: 'GET', target: '/a', body: '' },
      { method: 'POST', target: '/b', body: 'abc' },
      { method: 'POST', target: '/c', body: 'xy', chunked: true },
      { method: 'HEAD', target: '/d', body: '' },
      { method: 'DELETE', target: '/e', body: '' },
    ],
  },
  {
    name: 'HTTP/1.0 keep-alive request, then HTTP/1.0 with a body',
    wire: ['GET /old HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n', 'POST /old HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok'],
    requests: [
      { method: 'GET', target: '/old', minorVersion: 0, headers: ['Connection', 'Keep-Alive'], body: '' },
      { method: 'POST', target: '/old', minorVersion: 0, body: 'ok' },
    ],
  },
  {
    name: 'HTTP/1.0 without keep-alive is the last request of its connection',
    wire: ['GET /old HTTP/1.0\r\n\r\n', bad('POST /old HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok')],
    requests: [{ method: 'GET', target: '/old', minorVersion: 0, headers: [], body: '' }],
    drops: { http_after_close: 1 },
  },
  {
    name: 'Connection: close is the last request: pipelined ones after it are counted, their bodies skipped by framing',
    wire: [
      'GET /a HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n',
      bad('POST /b HTTP/1.1\r\nContent-Length: 17\r\n\r\nGET /c HTTP/1.1\r\n'),
      bad('GET /d HTTP/1.1\r\n\r\n'),
    ],
    requests: [{ method: 'GET', target: '/a' }],
    drops: { http_after_close: 2 },
  },
  {
    name: 'PRI * in HTTP/1.1 form is the HTTP/2 preface shape: nothing after it is replayed',
    wire: [bad('PRI * HTTP/1.1\r\n\r\nSM\r\n\r\nGET / HTTP/1.1\r\n\r\n')],
    requests: [],
    drops: { http2_preface: 2 },
  },
  {
    name: 'Expect: 100-continue, body follows',
    wire: ['PUT /big HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\nbody'],
    requests: [{ method: 'PUT', target: '/big', headers: ['Host', 'h', 'Expect', '100-continue', 'Content-Length', '4'], body: 'body' }],
  },
  {
    name: '40 headers, duplicates and odd case kept in order',
    wire: [`GET / HTTP/1.1\r\n${fortyHeaders.map((v, i) => (i % 2 === 0 ? `${v}:` : ` ${v}\r\n`)).join('')}\r\n`],
    requests: [{ method: 'GET', target: '/', headers: fortyHeaders }],
  },
  {
    name: 'empty lines before a request line are skipped',
    wire: ['\r\n\r\nGET /x HTTP/1.1\r\n\r\n', '\r\nGET /y HTTP/1.1\r\n\r\n'],
    requests: [
      { method: 'GET', target: '/x' },
      { method: 'GET', target: '/y' },
    ],
  },
  {
    name: 'absolute-form, asterisk-form, unknown method, obs-text, empty value, OWS trimmed',
    wire: [
      'OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n',
      'GET http://h/p?q HTTP/1.1\r\nX-Empty:\r\nX-Tabs:\t a\tb \t\r\nX-Latin: caf\xe9\r\n\r\n',
      'PURGE /cache HTTP/1.1\r\n\r\n',
    ],
    requests: [
      { method: 'OPTIONS', target: '*' },
      { method: 'GET', target: '/p?q', authority: 'h', headers: ['X-Empty', '', 'X-Tabs', 'a\tb', 'X-Latin', 'caf\xe9'] },
      { method: 'PURGE', target: '/cache' },
    ],
  },
  {
    name: 'absolute-form targets are replayed in origin form; Host is kept as sent',
    wire: [
      'GET http://example.com HTTP/1.1\r\nHost: other.example\r\n\r\n',
      'GET HTTPS://Example.com:8443?x=1 HTTP/1.1\r\n\r\n',
      'POST http://h:81/a/b?c#f HTTP/1.1\r\nHost: h:81\r\nContent-Length: 2\r\n\r\nok',
      'GET ftp://h/x HTTP/1.1\r\n\r\n',
    ],
    requests: [
      { method: 'GET', target: '/', authority: 'example.com', headers: ['Host', 'other.example'] },
      { method: 'GET', target: '/?x=1', authority: 'Example.com:8443' },
      { method: 'POST', target: '/a/b?c#f', authority: 'h:81', body: 'ok' },
      // Not http(s): passed on as it came (the origin server will answer it as production did).
      { method: 'GET', target: 'ftp://h/x' },
    ],
  },
  rejects('absolute-form with an empty authority', 'GET http:///x HTTP/1.1\r\n\r\n', 'http_malformed'),
  rejects('absolute-form with userinfo', 'GET http://user:pw@h/x HTTP/1.1\r\nHost: h\r\n\r\n', 'http_malformed'),
  {
    name: 'Content-Length list of identical values',
    wire: ['POST / HTTP/1.1\r\nContent-Length: 5, 5\r\ncontent-length: 5\r\n\r\nhello'],
    requests: [{ method: 'POST', target: '/', body: 'hello' }],
  },

  // ---- rejections: one lost request with the exact reason, then back in sync ----
  rejects('obs-fold', 'GET / HTTP/1.1\r\nX-A: a\r\n  folded\r\n\r\n', 'http_malformed'),
  rejects('whitespace before the first header (obs-fold-like)', 'GET / HTTP/1.1\r\n X-A: a\r\n\r\n', 'http_malformed'),
  rejects('bare CR in a header value', 'GET / HTTP/1.1\r\nX-A: a\rb\r\n\r\n', 'http_malformed'),
  rejects('bare CR in the request line', 'GET /a\rb HTTP/1.1\r\n\r\n', 'http_malformed'),
  rejects('bare LF ending the request line', 'GET / HTTP/1.1\nHost: h\r\n\r\n', 'http_malformed'),
  rejects('bare LF ending a header line', 'GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n', 'http_malformed'),
  rejects('whitespace between field name and colon', 'GET / HTTP/1.1\r\nHost : h\r\n\r\n', 'http_malformed'),
  rejects('invalid token char in a field name', 'GET / HTTP/1.1\r\nX(a): h\r\n\r\n', 'http_malformed'),
  rejects('empty field name', 'GET / HTTP/1.1\r\n: h\r\n\r\n', 'http_malformed'),
  rejects('header line without colon', 'GET / HTTP/1.1\r\nHost\r\n\r\n', 'http_malformed'),
  rejects('NUL in a field value', 'GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n', 'http_malformed'),
  rejects('DEL in a field value', 'GET / HTTP/1.1\r\nX: a\x7fb\r\n\r\n', 'http_malformed'),
  rejects('two spaces after the method', 'GET  / HTTP/1.1\r\n\r\n', 'http_malformed'),
  rejects('two spaces before the version', 'GET /  HTTP/1.1\r\n\r\n', 'http_malformed'),
  rejects('trailing space after the version', 'GET / HTTP/1.1 \r\n\r\n', 'http_malformed'),
  rejects('missing version (HTTP/0.9)', 'GET /\r\n\r\n', 'http_malformed'),
  rejects('HTTP/2.0 version', 'GET / HTTP/2.0\r\n\r\n', 'http_malformed'),
  rejects('HTTP/1.2 version', 'GET / HTTP/1.2\r\n\r\n', 'http_malformed'),
  rejects('lower-case version', 'GET / http/1.1\r\n\r\n', 'http_malformed'),
  rejects('method longer than 20 characters', 'ABCDEFGHIJKLMNOPQRSTU / HTTP/1.1\r\n\r\n', 'http_malformed'),
  rejects('garbage where a request must start', '\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\r\n', 'http_malformed'),
  rejects(
    'Transfer-Encoding with Content-Length',
    'POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
    'http_ambiguous_framing',
  ),
  rejects('Transfer-Encoding not ending in chunked', 'POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\nxxxx\r\n', 'http_ambiguous_framing'),
  rejects('chunked applied twice', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n', 'http_ambiguous_framing'),
  rejects('chunked then gzip', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n0\r\n\r\n', 'http_ambiguous_framing'),
  rejects('Transfer-Encoding on HTTP/1.0', 'POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 'http_ambiguous_framing'),
  rejects('differing Content-Length headers', 'POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd\r\n', 'http_ambiguous_framing'),
  rejects('differing Content-Length list', 'POST / HTTP/1.1\r\nContent-Length: 3, 4\r\n\r\nabcd\r\n', 'http_ambiguous_framing'),
  rejects('signed Content-Length', 'POST / HTTP/1.1\r\nContent-Length: +3\r\n\r\nabc\r\n', 'http_ambiguous_framing'),
  rejects('empty Content-Length', 'POST / HTTP/1.1\r\nContent-Length:\r\n\r\n', 'http_ambiguous_framing'),
  rejects('hex Content-Length', 'POST / HTTP/1.1\r\nContent-Length: 0x3\r\n\r\nabc\r\n', 'http_ambiguous_framing'),
  rejects('invalid chunk size', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n', 'http_ambiguous_framing'),
  rejects('empty chunk size', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n;ext\r\n0\r\n\r\n', 'http_ambiguous_framing'),
  rejects('chunk size over 2^53', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n40000000000001\r\nx\r\n', 'http_ambiguous_framing'),
  rejects('chunk size with trailing space', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1 \r\nx\r\n0\r\n\r\n', 'http_ambiguous_framing'),
  rejects('unterminated quoted chunk extension', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;a="x\r\nx\r\n0\r\n\r\n', 'http_ambiguous_framing'),
  rejects('bare LF after chunk size', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\nx\r\n0\r\n\r\n', 'http_ambiguous_framing'),
  rejects('missing CRLF after chunk data', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n', 'http_ambiguous_framing'),
  rejects('obs-fold in trailers', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: a\r\n b\r\n\r\n', 'http_malformed'),
  rejects('request line over the limit', `GET /${'a'.repeat(200)} HTTP/1.1\r\n\r\n`, 'http_line_too_long', { maxRequestLineBytes: 100 }),
  rejects('header section over the byte limit', `GET / HTTP/1.1\r\nX: ${'b'.repeat(300)}\r\n\r\n`, 'http_headers_too_large', { maxHeaderBytes: 200 }),
  rejects('header section that never ends', `GET / HTTP/1.1\r\n${'X-Never-Ends: yes\r\n'.repeat(50)}`, 'http_headers_too_large', { maxHeaderBytes: 200 }),
  rejects('too many header fields', `GET / HTTP/1.1\r\n${'X: y\r\n'.repeat(11)}\r\n`, 'http_headers_too_large', { maxHeaderCount: 10 }),
  rejects('trailers over the byte limit', `POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n${'T: zzzzzzzzzz\r\n'.repeat(20)}\r\n`, 'http_headers_too_large', { maxHeaderBytes: 100 }),
  overLimit('Content-Length body over the limit (skipped in sync)', `POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\n${'GET / HTTP/1.1\r\n\r\n'.repeat(5)}zzzzzzzzzz`, 'http_body_too_large', { maxBodyBytes: 50 }),
  overLimit('chunked body over the limit (skipped in sync)', `POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n20\r\n${'x'.repeat(32)}\r\n20\r\n${'y'.repeat(32)}\r\n0\r\nT: v\r\n\r\n`, 'http_body_too_large', { maxBodyBytes: 50 }),
  {
    name: 'a truncated head followed by a new request: the whole head is lost with it',
    wire: [bad('GET /a HTTP/1.1\r\nHost: h\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n'), bad(NEXT)],
    requests: [],
    drops: { http_malformed: 1, http_after_refused: 1 },
  },
  {
    name: 'CONNECT ends HTTP on the connection',
    wire: [bad('CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n\x16\x03\x01' + NEXT)],
    requests: [],
    drops: { http_upgrade: 1 },
  },
  {
    name: 'Upgrade: websocket ends HTTP on the connection',
    wire: [
      'GET /before HTTP/1.1\r\n\r\n',
      bad('GET /ws HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x05hello' + NEXT),
    ],
    requests: [{ method: 'GET', target: '/before' }],
    drops: { http_upgrade: 1 },
  },
  {
    name: 'Upgrade: h2c ends HTTP on the connection',
    wire: [
      bad('GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n' +
        'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00' + NEXT),
    ],
    requests: [],
    drops: { http_upgrade: 1 },
  },
  {
    name: 'HTTP/2 preface (prior knowledge) ends HTTP/1 parsing on the connection',
    wire: [bad('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x64' + NEXT + NEXT)],
    requests: [],
    // The second NEXT follows a CRLF, so it is delimited and counted as a request.
    drops: { http2_preface: 2 },
  },
  {
    name: 'HTTP/2 preface seen on a connection picked up midstream',
    midstream: true,
    wire: [bad('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n' + NEXT)],
    requests: [],
    drops: { http2_preface: 2 },
  },
  rejects('PRI with another target is not the preface', 'PRI / HTTP/2.0\r\n\r\n', 'http_malformed'),
  rejects('HTTP/2.0 with another method is not the preface', 'PRX * HTTP/2.0\r\n\r\n', 'http_malformed'),
  {
    name: 'Upgrade header without Connection: upgrade is just a header',
    wire: ['GET / HTTP/1.1\r\nUpgrade: h2c\r\n\r\n', NEXT],
    requests: [{ method: 'GET', target: '/', headers: ['Upgrade', 'h2c'] }, NEXT_REQ],
  },
  {
    name: 'partial request at end of connection',
    wire: ['GET /done HTTP/1.1\r\n\r\n', bad('POST /cut HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc')],
    requests: [{ method: 'GET', target: '/done' }],
    drops: { http_incomplete: 1 },
  },
  {
    name: 'empty lines at end of connection lose nothing',
    wire: ['GET / HTTP/1.1\r\n\r\n', bad('\r\n\r\n')],
    requests: [{ method: 'GET', target: '/' }],
  },

  // ---- midstream pickup ----
  {
    name: 'midstream: inside a header section',
    midstream: true,
    wire: [bad('-Agent: curl\r\nAccept: */*\r\n\r\n'), NEXT],
    requests: [NEXT_REQ],
  },
  {
    name: 'midstream: exactly at a request boundary',
    midstream: true,
    wire: [NEXT, NEXT],
    requests: [NEXT_REQ, NEXT_REQ],
  },
  {
    name: 'midstream: inside a body that holds header-like lines',
    midstream: true,
    wire: [
      bad('ontent-Type: text/plain\r\nHost: evil\r\n\r\nGET / HTTP/1.1 but not a line\r\nPOST /x HTTP/1.1x\r\nget / HTTP/1.1\r\n' + 'GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n'.slice(3)),
      NEXT,
    ],
    requests: [NEXT_REQ],
  },
  {
    name: 'midstream: a request line inside a body, after CRLF, is taken (accepted risk)',
    midstream: true,
    wire: [bad('body bytes\r\n'), 'GET /looks-real HTTP/1.1\r\n\r\n'],
    requests: [{ method: 'GET', target: '/looks-real' }],
  },
];
