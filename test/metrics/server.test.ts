import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import client from 'prom-client';
import { startMetricsServer } from '../../src/metrics/server.js';

test('/metrics, /healthz and /readyz answer with their own probes', async () => {
  const reg = new client.Registry();
  new client.Counter({ name: 'mirror_replay_test_total', help: 'x', registers: [reg] }).inc(3);
  let ready = { ok: false, detail: 'starting' };
  const srv = await startMetricsServer(reg, '127.0.0.1', 0, () => ({ ok: true, detail: 'alive' }), () => ready);
  const base = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
  try {
    const m = await fetch(`${base}/metrics`);
    assert.equal(m.status, 200);
    assert.match(await m.text(), /mirror_replay_test_total 3/);
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    const r = await fetch(`${base}/readyz`);
    assert.equal(r.status, 503);
    assert.equal((await r.text()).trim(), 'starting');
    ready = { ok: true, detail: 'ok' };
    assert.equal((await fetch(`${base}/readyz`)).status, 200);
    assert.equal((await fetch(`${base}/nope`)).status, 404);
  } finally {
    srv.close();
  }
});
