/**
 * HTTP/1.x answers with the verdict each must get from the reply framer's consumers (the replay
 * client and the digester of production's answers). Written after the answers of common servers
 * (nginx, Apache httpd, Envoy, Go net/http, Python http.server, IIS, proxies that join repeated
 * fields) as they appear on the wire, not captured; test/http/reply-consumers.test.ts adds answers
 * recorded live from node:http.
 */

export interface ReplyCase {
  name: string;
  /** The answer as the server writes it, latin1. */
  wire: string;
  /** The request's method (default GET). */
  method?: string;
  /** The server closes the connection after writing it (needed for close-delimited bodies). */
  close?: boolean;
  /** Cut points to try; default every byte. */
  cuts?: number[];
  /** The final answer: status and body (latin1); or why there is none. */
  expect: { status: number; body: string; headers?: string[] } | { error: 'malformed' | 'head_too_large' | 'incomplete' };
}

const DATE = 'Date: Mon, 02 Jun 2025 09:14:07 GMT';
const html = '<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n<center><h1>404 Not Found</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n';
const json = '{"id":12345,"name":"widget","tags":["a","b"],"price":9.5}';
const big = 'x'.repeat(20_000);
const every = (n: number, step: number) => Array.from({ length: Math.floor((n - 1) / step) }, (_, i) => (i + 1) * step);

export const REPLY_CASES: ReplyCase[] = [
  {
    name: 'nginx 200, Content-Length, keep-alive',
    wire: `HTTP/1.1 200 OK\r\nServer: nginx/1.24.0\r\n${DATE}\r\nContent-Type: application/json\r\nContent-Length: ${json.length}\r\nConnection: keep-alive\r\nETag: "6650a1b2-3a"\r\nAccept-Ranges: bytes\r\n\r\n${json}`,
    expect: { status: 200, body: json },
  },
  {
    name: 'nginx 404 default page',
    wire: `HTTP/1.1 404 Not Found\r\nServer: nginx/1.24.0\r\n${DATE}\r\nContent-Type: text/html\r\nContent-Length: ${html.length}\r\nConnection: keep-alive\r\n\r\n${html}`,
    expect: { status: 404, body: html },
  },
  {
    name: 'Apache 304 with Keep-Alive, no body',
    wire: `HTTP/1.1 304 Not Modified\r\n${DATE}\r\nServer: Apache/2.4.62 (Debian)\r\nConnection: Keep-Alive\r\nKeep-Alive: timeout=5, max=100\r\nETag: "2aa6-5e1c3f9d2a8c0"\r\n\r\n`,
    expect: { status: 304, body: '' },
  },
  {
    name: 'Go net/http chunked JSON',
    wire: `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n${DATE}\r\nTransfer-Encoding: chunked\r\n\r\n1c\r\n${json.slice(0, 28)}\r\n${(json.length - 28).toString(16)}\r\n${json.slice(28)}\r\n0\r\n\r\n`,
    expect: { status: 200, body: json },
  },
  {
    name: 'chunked with extensions and trailers',
    wire: 'HTTP/1.1 200 OK\r\nTrailer: Content-MD5, X-Checksum\r\nTransfer-Encoding: chunked\r\n\r\n5;name=value\r\nhello\r\n6 ; q="a \\"b\\""\r\n world\r\n0;last\r\nContent-MD5: XrY7u+Ae7tCTyyK7j1rNww==\r\nX-Checksum: 1\r\n\r\n',
    expect: { status: 200, body: 'hello world' },
  },
  {
    name: 'Envoy 503, lower-case fields',
    wire: `HTTP/1.1 503 Service Unavailable\r\ncontent-length: 19\r\ncontent-type: text/plain\r\ndate: Mon, 02 Jun 2025 09:14:07 GMT\r\nserver: envoy\r\n\r\nno healthy upstream`,
    expect: { status: 503, body: 'no healthy upstream', headers: ['content-length', '19', 'content-type', 'text/plain', 'date', 'Mon, 02 Jun 2025 09:14:07 GMT', 'server', 'envoy'] },
  },
  {
    name: 'Content-Length list joined by a proxy',
    wire: 'HTTP/1.1 200 OK\r\nVia: 1.1 proxy\r\nContent-Length: 5, 5\r\n\r\nhello',
    expect: { status: 200, body: 'hello' },
  },
  {
    name: 'Content-Length repeated with the same value',
    wire: 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello',
    expect: { status: 200, body: 'hello' },
  },
  {
    name: 'folded fields (obs-fold), one of them the Content-Length',
    wire: 'HTTP/1.1 200 OK\r\nServer: Microsoft-IIS/6.0\r\nX-Long: first part\r\n  second part\r\n\tthird\r\nContent-Length:\r\n 2\r\n\r\nok',
    expect: { status: 200, body: 'ok', headers: ['server', 'Microsoft-IIS/6.0', 'x-long', 'first part second part third', 'content-length', '2'] },
  },
  {
    name: '100 Continue, then the answer',
    method: 'POST',
    wire: 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nLocation: /items/7\r\nContent-Length: 0\r\n\r\n',
    expect: { status: 201, body: '' },
  },
  {
    name: '103 Early Hints and 102 Processing, then the answer',
    wire: 'HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n\r\nHTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 207 Multi-Status\r\nContent-Type: application/xml\r\nContent-Length: 4\r\n\r\n<a/>',
    expect: { status: 207, body: '<a/>' },
  },
  {
    name: 'answer to HEAD: Content-Length but no body',
    method: 'HEAD',
    wire: `HTTP/1.1 200 OK\r\nServer: nginx/1.24.0\r\nContent-Type: text/html\r\nContent-Length: 1234\r\nLast-Modified: Tue, 01 Apr 2025 10:00:00 GMT\r\n\r\n`,
    expect: { status: 200, body: '' },
  },
  {
    name: '204 to a CORS preflight',
    method: 'OPTIONS',
    wire: 'HTTP/1.1 204 No Content\r\nAccess-Control-Allow-Origin: https://shop.example.com\r\nAccess-Control-Allow-Methods: GET, POST, OPTIONS\r\nAccess-Control-Max-Age: 86400\r\nVary: Origin\r\n\r\n',
    expect: { status: 204, body: '' },
  },
  {
    name: '304 with framing fields that do not apply',
    wire: 'HTTP/1.1 304 Not Modified\r\nContent-Length: 999\r\nTransfer-Encoding: chunked\r\n\r\n',
    expect: { status: 304, body: '' },
  },
  {
    name: 'Python http.server: HTTP/1.0, no length, read until close',
    close: true,
    wire: 'HTTP/1.0 200 OK\r\nServer: SimpleHTTP/0.6 Python/3.11.2\r\nDate: Mon, 02 Jun 2025 09:14:07 GMT\r\nContent-type: text/html; charset=utf-8\r\n\r\n<!DOCTYPE HTML>\n<html lang="en">\n<body><ul><li><a href="a.txt">a.txt</a></li></ul></body>\n</html>\n',
    expect: { status: 200, body: '<!DOCTYPE HTML>\n<html lang="en">\n<body><ul><li><a href="a.txt">a.txt</a></li></ul></body>\n</html>\n' },
  },
  {
    name: 'HTTP/1.1, Connection: close, no length',
    close: true,
    wire: 'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: text/event-stream\r\n\r\ndata: 1\n\ndata: 2\n\n',
    expect: { status: 200, body: 'data: 1\n\ndata: 2\n\n' },
  },
  {
    name: 'Transfer-Encoding not ending in chunked: until close',
    close: true,
    wire: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n\x1f\x8b\x08\x00abc',
    expect: { status: 200, body: '\x1f\x8b\x08\x00abc' },
  },
  {
    name: 'Transfer-Encoding in HTTP/1.0: faulty framing, until close',
    close: true,
    wire: 'HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n',
    expect: { status: 200, body: '2\r\nok\r\n0\r\n\r\n' },
  },
  {
    name: 'chunked and Content-Length: chunked wins',
    wire: 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n',
    expect: { status: 200, body: 'ok' },
  },
  {
    name: 'bare LF line ends (embedded server)',
    wire: 'HTTP/1.1 200 OK\nContent-Type: text/plain\nTransfer-Encoding: chunked\n\n3\nabc\n0\n\n',
    expect: { status: 200, body: 'abc' },
  },
  {
    name: 'application/problem+json error body',
    wire: 'HTTP/1.1 422 Unprocessable Content\r\nContent-Type: application/problem+json\r\nContent-Length: 46\r\n\r\n{"title":"invalid","status":422,"detail":"id"}',
    expect: { status: 422, body: '{"title":"invalid","status":422,"detail":"id"}' },
  },
  {
    name: '20 KB body',
    wire: `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${big.length}\r\n\r\n${big}`,
    cuts: every(20_070, 997),
    expect: { status: 200, body: big },
  },
  {
    name: '101 Switching Protocols',
    wire: 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n',
    expect: { status: 101, body: '' },
  },
  {
    name: 'differing Content-Length values',
    wire: 'HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello',
    expect: { error: 'malformed' },
  },
  {
    name: 'space in a field name',
    wire: 'HTTP/1.1 200 OK\r\nBad Name: x\r\nContent-Length: 0\r\n\r\n',
    expect: { error: 'malformed' },
  },
  {
    name: 'not a status line',
    wire: 'HTTP/1.1 OK\r\nContent-Length: 0\r\n\r\n',
    expect: { error: 'malformed' },
  },
  {
    name: 'bare CR inside a field',
    wire: 'HTTP/1.1 200 OK\r\nX: a\rb\r\nContent-Length: 0\r\n\r\n',
    expect: { error: 'malformed' },
  },
  {
    name: 'bad chunk size',
    wire: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5x\r\nhello\r\n0\r\n\r\n',
    expect: { error: 'malformed' },
  },
  {
    name: 'head over 64 KiB',
    wire: `HTTP/1.1 200 OK\r\nX-Big: ${'b'.repeat(70_000)}\r\nContent-Length: 0\r\n\r\n`,
    cuts: [10, 30_000, 65_535, 65_536, 65_537, 69_990],
    expect: { error: 'head_too_large' },
  },
  {
    name: 'closed mid-body',
    close: true,
    wire: 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc',
    expect: { error: 'incomplete' },
  },
];
