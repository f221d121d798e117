import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Health } from '../../src/ops/health.js';

function loops() {
  const progress = { a: 0, b: 0 };
  return { progress, list: [{ name: 'a', progress: () => progress.a }, { name: 'b', progress: () => progress.b }] };
}

test('starting until ready; then ok while every loop makes progress', () => {
  let now = 1_000;
  const l = loops();
  const h = new Health(l.list, 5_000, () => now);
  assert.deepEqual(h.readiness(), { ok: false, detail: 'starting' });
  assert.deepEqual(h.liveness(), { ok: true, detail: 'starting' });
  h.ready = true;
  for (let i = 0; i < 10; i++) {
    now += 1_000;
    l.progress.a++;
    l.progress.b++;
    assert.deepEqual(h.readiness(), { ok: true, detail: 'ok' });
  }
});

test('one stuck loop among two: not ready and not alive, named; alive again once it moves', () => {
  let now = 1_000;
  const l = loops();
  const h = new Health(l.list, 5_000, () => now);
  h.ready = true;
  now += 5_000;
  l.progress.a++;
  assert.equal(h.readiness().ok, true, 'exactly the stale time is not stuck yet');
  now += 1;
  l.progress.a++;
  assert.deepEqual(h.readiness(), { ok: false, detail: 'capture loop on b is not making progress' });
  assert.deepEqual(h.liveness(), { ok: false, detail: 'capture loop on b is not making progress' });
  l.progress.b++;
  assert.deepEqual(h.liveness(), { ok: true, detail: 'ok' });
});

test('stopping: not ready, still alive, even with a stuck loop', () => {
  let now = 0;
  const l = loops();
  const h = new Health(l.list, 5_000, () => now);
  h.ready = true;
  h.stopping = true;
  now += 60_000;
  assert.deepEqual(h.readiness(), { ok: false, detail: 'stopping' });
  assert.deepEqual(h.liveness(), { ok: true, detail: 'stopping' });
});
