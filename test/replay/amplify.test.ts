import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../src/errors.js';
import { copyHeaders, parseCopyMarker } from '../../src/replay/amplify.js';

test('copy marker: a token, validated by the HTTP grammar', () => {
  assert.equal(parseCopyMarker(undefined), null);
  assert.deepEqual(parseCopyMarker('X-Mirror-Copy'), { name: 'X-Mirror-Copy', lower: 'x-mirror-copy' });
  for (const bad of ['X Copy', 'X-Copy:', 'X\r\nEvil', 'Ä']) assert.throws(() => parseCopyMarker(bad), ConfigError, bad);
});

test("a copy's headers: production's in order, any NAME it carried replaced by the copy number", () => {
  const m = parseCopyMarker('X-Mirror-Copy');
  const h = ['Host', 'a', 'x-mirror-copy', '7', 'Accept', '*/*', 'X-MIRROR-COPY', '8'];
  assert.deepEqual(copyHeaders(h, m, 2), ['Host', 'a', 'Accept', '*/*', 'X-Mirror-Copy', '2']);
  assert.deepEqual(h, ['Host', 'a', 'x-mirror-copy', '7', 'Accept', '*/*', 'X-MIRROR-COPY', '8'], 'the original is untouched');
  assert.deepEqual(copyHeaders(['Host', 'a'], null, 1), ['Host', 'a']);
});
