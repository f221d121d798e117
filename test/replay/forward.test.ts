import { test } from 'node:test';
import assert from 'node:assert/strict';
import { forwardHeaders } from '../../src/replay/forward.js';
import type { HttpRequest } from '../../src/http/types.js';

const flow = { clientAddr: '192.0.2.7', clientPort: 50000, serverAddr: '10.0.0.5', serverPort: 80, ipVersion: 4 };
const req = (headers: string[]): HttpRequest => ({ method: 'GET', target: '/', minorVersion: 1, headers, body: Buffer.alloc(0), chunked: false, trailers: [] });

test('keeps order, case and duplicates; replaces Host in place; adds X-Forwarded-*', () => {
  const out = forwardHeaders(req(['Host', 'prod.example', 'x-ONE', '1', 'Cookie', 'a', 'cookie', 'b', 'X-Dup', '1', 'X-Dup', '2']), flow, { keepHost: false, destinationHost: '10.0.0.37:8080' });
  assert.deepEqual(out, ['Host', '10.0.0.37:8080', 'x-ONE', '1', 'Cookie', 'a', 'cookie', 'b', 'X-Dup', '1', 'X-Dup', '2', 'X-Forwarded-For', '192.0.2.7', 'X-Forwarded-Port', '80', 'X-Forwarded-Proto', 'http', 'X-Forwarded-Host', 'prod.example']);
});

test('--keep-host-header keeps production Host', () => {
  const out = forwardHeaders(req(['hOST', 'prod.example']), flow, { keepHost: true, destinationHost: 'x' });
  assert.deepEqual(out.slice(0, 2), ['hOST', 'prod.example']);
});

test('hop-by-hop fields and those named by Connection are not forwarded; framing fields are', () => {
  const out = forwardHeaders(
    req(['Host', 'h', 'Connection', 'keep-alive, X-Secret, Content-Length', 'X-Secret', 's', 'Keep-Alive', 'timeout=5', 'TE', 'trailers', 'Upgrade', 'h2c', 'Expect', '100-continue', 'Proxy-Connection', 'x', 'Content-Length', '3']),
    flow,
    { keepHost: true, destinationHost: 'x' },
  );
  assert.deepEqual(out.slice(0, 4), ['Host', 'h', 'Content-Length', '3']);
});

test('X-Forwarded-For is appended to; the others are set only if absent', () => {
  const out = forwardHeaders(req(['X-Forwarded-For', '203.0.113.1', 'X-Forwarded-Proto', 'https', 'X-Forwarded-Port', '443', 'X-Forwarded-Host', 'edge']), flow, { keepHost: false, destinationHost: 'x' });
  assert.deepEqual(out, ['X-Forwarded-For', '203.0.113.1, 192.0.2.7', 'X-Forwarded-Proto', 'https', 'X-Forwarded-Port', '443', 'X-Forwarded-Host', 'edge']);
});

test('HTTP/1.0 without Host gets no Host and no X-Forwarded-Host', () => {
  const out = forwardHeaders(req(['Accept', '*/*']), flow, { keepHost: false, destinationHost: 'x' });
  assert.deepEqual(out, ['Accept', '*/*', 'X-Forwarded-For', '192.0.2.7', 'X-Forwarded-Port', '80', 'X-Forwarded-Proto', 'http']);
});
