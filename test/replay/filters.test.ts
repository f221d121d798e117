import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildFilter, NO_FILTERS } from '../../src/replay/filters.js';
import { ConfigError } from '../../src/errors.js';
import type { HttpRequest } from '../../src/http/types.js';

const req = (method: string, target: string, headers: string[] = []): HttpRequest => ({ method, target, minorVersion: 1, headers, body: Buffer.alloc(0), chunked: false, trailers: [] });

test('no filters: no step at all', () => {
  assert.equal(buildFilter(NO_FILTERS), null);
});

test('methods: allow list and deny list, case-insensitive', () => {
  const f = buildFilter({ ...NO_FILTERS, allowMethods: ['get', 'HEAD'] })!;
  assert.equal(f(req('GET', '/')), true);
  assert.equal(f(req('HEAD', '/')), true);
  assert.equal(f(req('POST', '/')), false);
  const d = buildFilter({ ...NO_FILTERS, disallowMethods: ['POST', 'DELETE'] })!;
  assert.equal(d(req('POST', '/')), false);
  assert.equal(d(req('GET', '/')), true);
});

test('URLs: at least one allow, no disallow, on path and query', () => {
  const f = buildFilter({ ...NO_FILTERS, allowUrls: ['^/api/', '^/health$'], disallowUrls: ['secret=1'] })!;
  assert.equal(f(req('GET', '/api/users?page=2')), true);
  assert.equal(f(req('GET', '/health')), true);
  assert.equal(f(req('GET', '/static/a.css')), false);
  assert.equal(f(req('GET', '/api/x?secret=1')), false);
});

test('headers: every allow rule must match, any disallow rule drops', () => {
  const f = buildFilter({ ...NO_FILTERS, allowHeaders: ['Host: ^shop\\.', 'X-Env: prod'], disallowHeaders: ['User-Agent: bot'] })!;
  assert.equal(f(req('GET', '/', ['host', 'shop.example', 'X-ENV', 'prod-1'])), true);
  assert.equal(f(req('GET', '/', ['Host', 'shop.example'])), false);
  assert.equal(f(req('GET', '/', ['Host', 'shop.example', 'X-Env', 'prod', 'User-Agent', 'Googlebot'])), false);
});

test('bad rules stop startup with the flag named', () => {
  assert.throws(() => buildFilter({ ...NO_FILTERS, allowUrls: ['(unclosed'] }), (e: unknown) => e instanceof ConfigError && /--http-allow-url .*not a valid regular expression/.test(e.message));
  assert.throws(() => buildFilter({ ...NO_FILTERS, allowHeaders: ['no colon'] }), /--http-allow-header .*must be 'Name: regex'/);
  assert.throws(() => buildFilter({ ...NO_FILTERS, disallowMethods: ['GE T'] }), /--http-disallow-method/);
});
