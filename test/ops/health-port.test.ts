import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startHealthPort } from '../../src/ops/health-port.js';

function connect(port: number): Promise<'accepted' | string> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve('accepted');
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return p;
}

test('the health-check port accepts connections only while healthy', async () => {
  const port = await freePort();
  let healthy = false;
  const hp = await startHealthPort('127.0.0.1', port, () => healthy, 60_000);
  try {
    assert.equal(hp.listening(), false);
    assert.equal(await connect(port), 'ECONNREFUSED', 'not ready yet: the NLB must see a failed check');
    healthy = true;
    await hp.refresh();
    assert.equal(await connect(port), 'accepted');
    assert.equal(await connect(port), 'accepted', 'each check gets its own connection');
    healthy = false;
    await hp.refresh();
    assert.equal(await connect(port), 'ECONNREFUSED');
    healthy = true;
    await hp.refresh();
    assert.equal(await connect(port), 'accepted', 'reopens after recovering');
  } finally {
    await hp.close();
  }
  assert.equal(await connect(port), 'ECONNREFUSED', 'closed for good after close()');
});

test('a port already taken fails loudly when it should open', async () => {
  const blocker = net.createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  const port = (blocker.address() as net.AddressInfo).port;
  try {
    await assert.rejects(startHealthPort('127.0.0.1', port, () => true), { code: 'EADDRINUSE' });
  } finally {
    blocker.close();
  }
});
