import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ERROR_CLASSES, ERROR_CODES, MirrorReplayError, REPLAY_ERROR_CODES } from '../src/errors.js';

test('the catalogue: each class makes errors with its own stable code and name, codes unique and MR_*', () => {
  assert.equal(new Set(ERROR_CODES).size, ERROR_CODES.length, 'codes are unique');
  for (const C of ERROR_CLASSES) {
    const e = new C('boom');
    assert.ok(e instanceof MirrorReplayError && e instanceof Error && e instanceof C);
    assert.equal(e.code, C.code);
    assert.match(e.code, /^MR_[A-Z_]+$/);
    assert.equal(e.name, C.name, 'the name is the class name (logs show it)');
    assert.equal(e.message, 'boom');
  }
  for (const c of REPLAY_ERROR_CODES) assert.ok(ERROR_CODES.includes(c));
});
