/** --encap-interface, --vni and --pcap-encap: from flags, the environment and --config FILE, and every wrong combination refused by name. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from '../../src/cli/args.js';
import { DEFAULTS } from '../../src/config/config.js';
import { captureOptions } from '../../src/config/options.js';
import { ConfigError } from '../../src/errors.js';

const D = ['--destination', 'http://10.0.0.37'];

test('--encap-interface alone: no vxlan0, one capture thread, every VNI', () => {
  const c = parseArgs([...D, '--encap-interface', 'eth0'])!;
  assert.deepEqual(c.encapInterfaces, ['eth0']);
  assert.deepEqual(c.interfaces, [], 'no vxlan0 at all');
  assert.equal(c.workers, 1);
  assert.deepEqual(c.vnis, []);
  const o = captureOptions(c);
  assert.deepEqual(o.encapInterfaces, ['eth0']);
  assert.deepEqual(o.stages.encap, { vnis: [] });
  // Without it, nothing changes: vxlan0 and the usual workers.
  const plain = parseArgs(D)!;
  assert.deepEqual(plain.interfaces, ['vxlan0']);
  assert.deepEqual(plain.encapInterfaces, []);
  assert.equal(plain.workers, DEFAULTS.workers);
});

test('repeatable flags, with --interface beside them; --vni numbers', () => {
  const c = parseArgs([...D, '--encap-interface', 'eth0', '--encap-interface', 'eth1', '--interface', 'vxlan0', '--vni', '7', '--vni', '8'])!;
  assert.deepEqual(c.encapInterfaces, ['eth0', 'eth1']);
  assert.deepEqual(c.interfaces, ['vxlan0']);
  assert.deepEqual(c.vnis, [7, 8]);
});

test('the environment (comma-separated) and a config file', () => {
  process.env.MIRROR_REPLAY_ENCAP_INTERFACE = 'eth0,eth1';
  process.env.MIRROR_REPLAY_VNI = '7,8';
  try {
    const c = parseArgs(D)!;
    assert.deepEqual(c.encapInterfaces, ['eth0', 'eth1']);
    assert.deepEqual(c.vnis, [7, 8]);
  } finally {
    delete process.env.MIRROR_REPLAY_ENCAP_INTERFACE;
    delete process.env.MIRROR_REPLAY_VNI;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mr-config-'));
  const f = path.join(dir, 'c.yaml');
  fs.writeFileSync(f, 'encap-interface: [ens5]\nvni: [42]\n');
  try {
    const c = parseArgs([...D, '--config', f])!;
    assert.deepEqual(c.encapInterfaces, ['ens5']);
    assert.deepEqual(c.vnis, [42]);
    assert.equal(c.workers, 1);
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
  const p = parseArgs([...D, '--pcap', 'x.pcap', '--pcap-encap', '--vni', '3'])!;
  assert.equal(p.pcapEncap, true);
  assert.deepEqual(captureOptions(p).stages.encap, { vnis: [3] });
});

test('wrong combinations are ConfigErrors naming the flag', () => {
  const bad: Array<[string[], RegExp]> = [
    [['--encap-interface', 'eth0', '--workers', '2'], /--encap-interface cannot be used with --workers 2.*--workers 1/],
    [['--vni', '7'], /--vni selects VNIs when mirror-replay decapsulates/],
    [['--pcap', 'x.pcap', '--vni', '7'], /--vni selects VNIs/],
    [['--encap-interface', 'eth0', '--vni', '16777216'], /--vni must be an integer from 0 to 16777215/],
    [['--encap-interface', 'eth0', '--vni', 'seven'], /--vni must be a number/],
    [['--encap-interface', 'eth0', '--vni', '7', '--vni', '7'], /--vni: the same VNI is given twice/],
    [['--pcap-encap'], /--pcap-encap needs --pcap FILE/],
    [['--encap-interface', 'eth0', '--interface', 'eth0'], /the same interface is given twice/],
    [['--encap-interface', 'a/b'], /--encap-interface "a\/b" is not an interface name/],
  ];
  for (const [args, re] of bad) assert.throws(() => parseArgs([...D, ...args]), (e: unknown) => e instanceof ConfigError && re.test(e.message), args.join(' '));
});
