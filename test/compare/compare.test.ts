import { test } from 'node:test';
import { createHash } from 'node:crypto';
import assert from 'node:assert/strict';
import { compareOptions, compareResponses, isNoise } from '../../src/compare/compare.js';
import { jsonEqual, parseJsonPath } from '../../src/compare/json.js';
import { compileRoutes } from '../../src/compare/routes.js';
import type { ResponseDigest } from '../../src/http/response.js';
import { ConfigError } from '../../src/errors.js';

function digest(status: number, headers: string[], body = 'ok', json = false): ResponseDigest {
  return {
    status,
    minorVersion: 1,
    headers,
    bodyLength: Buffer.byteLength(body),
    bodySha256: createHash('sha256').update(body).digest('hex'),
    bodySnippet: Buffer.alloc(0),
    jsonBody: json ? Buffer.from(body) : null,
  };
}

const opts = compareOptions();
const H = ['content-type', 'text/plain', 'date', 'Mon, 01 Jan 2024 00:00:00 GMT', 'server', 'a', 'content-length', '2'];

test('identical apart from Date, Server value and framing headers: match', () => {
  const prod = digest(200, H);
  const test_ = digest(200, ['content-type', 'text/plain', 'date', 'Tue, 02 Jan 2024 00:00:00 GMT', 'server', 'b', 'transfer-encoding', 'chunked', 'connection', 'keep-alive']);
  assert.deepEqual(compareResponses(prod, test_, opts), { result: 'match', headers: [], bodyDiffers: false });
});

test('status first, then body, then headers; differing header names always listed', () => {
  const prod = digest(200, H);
  assert.equal(compareResponses(prod, digest(500, [...H, 'x-extra', '1']), opts).result, 'status_mismatch');
  const body = compareResponses(prod, digest(200, ['content-type', 'text/html', 'content-length', '7'], 'changed'), opts);
  assert.deepEqual(body, { result: 'body_mismatch', headers: ['content-type', 'server'], bodyDiffers: true });
  assert.deepEqual(compareResponses(prod, digest(200, [...H, 'x-extra', '1']), opts), { result: 'header_mismatch', headers: ['x-extra'], bodyDiffers: false });
});

test('Set-Cookie and ETag: presence compared, values not; duplicates and order count elsewhere', () => {
  const prod = digest(200, ['set-cookie', 'a=1', 'etag', '"1"', 'vary', 'a', 'vary', 'b']);
  assert.equal(compareResponses(prod, digest(200, ['set-cookie', 'a=2', 'etag', '"2"', 'vary', 'a', 'vary', 'b']), opts).result, 'match');
  assert.deepEqual(compareResponses(prod, digest(200, ['etag', '"2"', 'vary', 'b', 'vary', 'a']), opts).headers, ['set-cookie', 'vary']);
  const more = compareOptions(['vary']);
  assert.deepEqual(compareResponses(prod, digest(200, ['set-cookie', 'x', 'etag', '"2"']), more).headers, []);
});

test('JSON structure: key order ignored, configured paths ignored, arrays ordered', () => {
  const j = compareOptions([], [], [parseJsonPath('meta.time'), parseJsonPath('items.*.id')]);
  const a = digest(200, [], '{"items":[{"id":1,"v":"x"}],"meta":{"time":1}}', true);
  const b = digest(200, [], '{"meta":{"time":2},"items":[{"v":"x","id":9}]}', true);
  assert.equal(compareResponses(a, b, j).result, 'match');
  assert.equal(compareResponses(a, b, opts).result, 'body_mismatch', 'without the option: bytes');
  const c = digest(200, [], '{"items":[{"id":1,"v":"y"}],"meta":{"time":1}}', true);
  assert.equal(compareResponses(a, c, j).result, 'body_mismatch');
  assert.equal(jsonEqual(Buffer.from('{'), Buffer.from('{}'), []), null);
  assert.throws(() => parseJsonPath('a..b'), ConfigError);
});

test('noise: a difference the baseline shares', () => {
  const prod = digest(200, H);
  const cand = compareResponses(prod, digest(200, [...H, 'x-req', '1']), opts);
  assert.equal(isNoise(cand, compareResponses(prod, digest(200, [...H, 'x-req', '2']), opts)), true, 'x-req differs on the baseline too');
  assert.equal(isNoise(cand, compareResponses(prod, digest(200, H), opts)), false);
  const body = compareResponses(prod, digest(200, H, 'zz'), opts);
  assert.equal(isNoise(body, compareResponses(prod, digest(200, H, 'yy'), opts)), true);
  assert.equal(isNoise(compareResponses(prod, digest(500, H), opts), compareResponses(prod, digest(200, H), opts)), false);
});

test('route templates: first match, query ignored, others are "other"; bad templates refused', () => {
  const r = compileRoutes(['/api/users/:id', '/api/users/:id/orders', '/static/*']);
  assert.equal(r('/api/users/42?x=1'), '/api/users/:id');
  assert.equal(r('/api/users/42/orders'), '/api/users/:id/orders');
  assert.equal(r('/static/a/b.css'), '/static/*');
  assert.equal(r('/api/users/'), 'other');
  assert.equal(r('/elsewhere'), 'other');
  assert.equal(compileRoutes([])('/x'), 'other');
  for (const bad of ['api', '/a/*/b', '/a/x:y']) assert.throws(() => compileRoutes([bad]), ConfigError, bad);
});
