import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { notifySocketAddress, systemdNotifier, watchdogIntervalMs } from '../../src/ops/notify.js';
import { NotifyListener } from './notify-listener.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(here, '../../..');
const MAIN = path.join(ROOT, 'dist/src/cli/main.js');
const FIXTURE = path.join(ROOT, 'test/fixtures/http-mix.pcap');
const isRoot = process.getuid?.() === 0;
const inCI = process.env.CI === 'true';

test('NOTIFY_SOCKET values become sockaddr_un: paths NUL-terminated, abstract names with a leading NUL', () => {
  const p = notifySocketAddress('/run/systemd/notify');
  assert.equal(p.len, 2 + '/run/systemd/notify'.length + 1);
  assert.equal(p.addr.subarray(2, p.len - 1).toString(), '/run/systemd/notify');
  assert.equal(p.addr[p.len - 1], 0);
  const a = notifySocketAddress('@sd-notify-1');
  assert.equal(a.len, 2 + 1 + 'sd-notify-1'.length);
  assert.equal(a.addr[2], 0);
  assert.equal(a.addr.subarray(3, a.len).toString(), 'sd-notify-1');
  assert.throws(() => notifySocketAddress('relative/path'), /absolute path or @abstract/);
  assert.throws(() => notifySocketAddress(`/${'x'.repeat(120)}`), /longer than/);
});

test('WATCHDOG_USEC is halved; a WATCHDOG_PID of another process turns it off', () => {
  assert.equal(watchdogIntervalMs({}), null);
  assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: '30000000' }), 15_000);
  assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: String(process.pid) }), 15_000);
  assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '1' }, 2), null);
  assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: 'soon' }), null);
  assert.equal(systemdNotifier({}).enabled, false);
  assert.equal(systemdNotifier({}).send('READY=1'), 0, 'no socket: a no-op');
});

test('a notifier reaches a listener on an abstract and on a path socket', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mr-notify-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  for (const address of [`@mr-notify-unit-${process.pid}`, path.join(dir, 'notify')]) {
    const l = new NotifyListener(address);
    try {
      const n = systemdNotifier({ NOTIFY_SOCKET: address });
      assert.equal(n.send('READY=1\nSTATUS=hello'), 0);
      n.close();
      await l.waitFor('STATUS=hello', 2000);
      assert.deepEqual(l.assignments(), ['READY=1', 'STATUS=hello']);
    } finally {
      l.close();
    }
  }
});

test('the real daemon (--pcap) says READY=1 then STOPPING=1 to NOTIFY_SOCKET', async () => {
  const address = `@mr-notify-pcap-${process.pid}`;
  const l = new NotifyListener(address);
  try {
    const p = spawn(process.execPath, [MAIN, '--pcap', FIXTURE, '--destination', 'http://127.0.0.1:9', '--metrics-port', '0', '--timeout', '200ms', '--log-level', 'silent'], {
      env: { ...process.env, NOTIFY_SOCKET: address },
      stdio: 'ignore',
    });
    const code = await new Promise<number | null>((r) => p.on('exit', r));
    assert.equal(code, 0);
    await l.waitFor('STOPPING=1', 2000);
    const a = l.assignments();
    assert.ok(a.indexOf('READY=1') >= 0 && a.indexOf('READY=1') < a.indexOf('STOPPING=1'), JSON.stringify(a));
  } finally {
    l.close();
  }
});

const liveSkip = !isRoot && !inCI ? 'needs root for a network namespace with a live capture' : false;
const ns = `mr-notify-${process.pid}`;
after(() => {
  if (isRoot) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
});

test('live capture: READY=1 once bound, WATCHDOG=1 while the loop runs, STOPPING=1 on SIGTERM, exit 0', { skip: liveSkip, timeout: 60_000 }, async (t) => {
  if (!isRoot) throw new Error('CI=true but not root: this test needs root');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mr-notify-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  assert.equal(spawnSync('ip', ['netns', 'add', ns]).status, 0);
  assert.equal(spawnSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']).status, 0);
  // Abstract sockets belong to a network namespace, so the daemon in `ns` gets a path.
  const address = path.join(dir, 'notify');
  const l = new NotifyListener(address);
  try {
    const p = spawn('ip', ['netns', 'exec', ns, process.execPath, MAIN, '--interface', 'lo', '--destination', 'http://127.0.0.1:9', '--metrics-host', '127.0.0.1', '--ring-mb', '4', '--log-level', 'silent'], {
      env: { ...process.env, NOTIFY_SOCKET: address, WATCHDOG_USEC: '200000' },
      stdio: 'ignore',
    });
    const exited = new Promise<number | null>((r) => p.on('exit', r));
    await l.waitFor('READY=1', 20_000);
    const readyAt = l.assignments().indexOf('READY=1');
    const start = Date.now();
    while (l.assignments().filter((x) => x === 'WATCHDOG=1').length < 3 && Date.now() - start < 10_000) await new Promise((r) => setTimeout(r, 50));
    p.kill('SIGTERM');
    assert.equal(await exited, 0);
    await l.waitFor('STOPPING=1', 2000);
    const a = l.assignments();
    assert.ok(a.filter((x) => x === 'WATCHDOG=1').length >= 3, JSON.stringify(a));
    assert.ok(a.indexOf('WATCHDOG=1') > readyAt, 'no watchdog ping before READY=1');
    assert.ok(a.lastIndexOf('WATCHDOG=1') < a.indexOf('STOPPING=1'), 'no watchdog ping after STOPPING=1');
  } finally {
    l.close();
  }
});
