import { test } from 'node:test';
import assert from 'node:assert/strict';
import { interfaceInfo } from '../../src/capture/netif.js';
import { CaptureError } from '../../src/errors.js';

test('netif: lo exists, is up and has the loopback MTU', () => {
  const lo = interfaceInfo('lo');
  assert.equal(lo.up, true);
  assert.equal(lo.running, true);
  assert.equal(lo.mtu, 65536);
  assert.ok(Number.isInteger(lo.index) && lo.index > 0);
});

test('netif: a missing interface is a CaptureError that says how to create it', () => {
  assert.throws(
    () => interfaceInfo('mrnope0'),
    (e: unknown) =>
      e instanceof CaptureError && e.code === 'MR_CAPTURE' && e.errno === 19 && /mrnope0 does not exist.*vxlan-up\.sh/.test(e.message),
  );
});

test('netif: bad names are rejected before any ioctl', () => {
  for (const name of ['', 'a/b', 'eth 0', 'tab\t', 'x'.repeat(16), 'nul\0', '.', '..', 'a:b', 42 as unknown as string, undefined as unknown as string]) {
    assert.throws(() => interfaceInfo(name), (e: unknown) => e instanceof CaptureError && e.code === 'MR_CAPTURE', `name ${JSON.stringify(name)}`);
  }
  // 15 characters is the longest legal name; it just does not exist.
  assert.throws(() => interfaceInfo('x'.repeat(15)), /does not exist/);
});
