/**
 * The units install with scripts/install-systemd.sh and pass `systemd-analyze verify` without a
 * single warning about them (verify exits 0 even for unknown keys, so its output is checked too).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NODE_ENV, NODE_FLAGS } from '../../src/cli/node-flags.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const INSTALL = path.join(ROOT, 'scripts/install-systemd.sh');
const hasAnalyze = spawnSync('systemd-analyze', ['--version'], { stdio: 'ignore' }).status === 0;
const skip = !hasAnalyze && process.env.CI !== 'true' ? 'systemd-analyze not found: apt-get install systemd' : false;

function install(args: string[]) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mr-systemd-'));
  const r = spawnSync('bash', [INSTALL, '--root', root, '--node', process.execPath, ...args], { encoding: 'utf8' });
  return { root, ...r };
}

test('install-systemd.sh writes units with paths filled in, and default configuration', (t) => {
  const r = install(['--vni', '7', '--dev', 'ens5']);
  t.after(() => fs.rmSync(r.root, { recursive: true, force: true }));
  assert.equal(r.status, 0, r.stderr);
  const unit = fs.readFileSync(path.join(r.root, 'etc/systemd/system/mirror-replay.service'), 'utf8');
  assert.ok(!unit.includes('@PREFIX@') && !unit.includes('@NODE@'));
  assert.ok(unit.includes(`ExecStart=${process.execPath} ${NODE_FLAGS.join(' ')} ${ROOT}/dist/src/cli/main.js --config /etc/mirror-replay/config.yaml`));
  for (const [k, v] of Object.entries(NODE_ENV)) assert.ok(unit.includes(`Environment=${k}=${v}`), `mirror-replay.service sets ${k}`);
  for (const k of ['Type=notify', 'AmbientCapabilities=CAP_NET_RAW', 'CapabilityBoundingSet=CAP_NET_RAW', 'DynamicUser=yes', 'NoNewPrivileges=yes', 'ProtectSystem=strict', 'PrivateTmp=yes', 'ProtectKernelTunables=yes', 'ProtectKernelModules=yes', 'ProtectKernelLogs=yes', 'RestrictAddressFamilies=AF_PACKET AF_INET AF_INET6 AF_NETLINK AF_UNIX', 'SystemCallFilter=@system-service', 'Restart=on-failure', 'WatchdogSec=']) {
    assert.ok(unit.includes(k), `mirror-replay.service has ${k}`);
  }
  assert.ok(!/^MemoryDenyWriteExecute=/m.test(unit), 'V8 needs W+X memory');
  const env = fs.readFileSync(path.join(r.root, 'etc/mirror-replay/vxlan-vxlan0.env'), 'utf8');
  assert.match(env, /^VNI=7$/m);
  assert.match(env, /^DEV=ens5$/m);
  assert.ok(fs.existsSync(path.join(r.root, 'etc/mirror-replay/config.yaml')));
  // A second run keeps the operator's files.
  fs.writeFileSync(path.join(r.root, 'etc/mirror-replay/config.yaml'), 'destination: [http://10.1.1.1]\n');
  const again = spawnSync('bash', [INSTALL, '--root', r.root, '--node', process.execPath], { encoding: 'utf8' });
  assert.equal(again.status, 0, again.stderr);
  assert.equal(fs.readFileSync(path.join(r.root, 'etc/mirror-replay/config.yaml'), 'utf8'), 'destination: [http://10.1.1.1]\n');
  assert.ok(fs.existsSync(path.join(r.root, 'etc/mirror-replay/config.yaml.dist')));
});

test('install-systemd.sh refuses bad values', () => {
  for (const [args, code] of [[['--vni', '0'], 3], [['--vni', '16777216'], 3], [['--name', 'a/b'], 3], [['--bogus'], 2]] as const) {
    const r = install([...args]);
    fs.rmSync(r.root, { recursive: true, force: true });
    assert.equal(r.status, code, `${args.join(' ')}: ${r.stderr}`);
  }
});

test('systemd-analyze verify passes for both units, with no warning', { skip }, (t) => {
  const r = install([]);
  t.after(() => fs.rmSync(r.root, { recursive: true, force: true }));
  assert.equal(r.status, 0, r.stderr);
  const dir = path.join(r.root, 'etc/systemd/system');
  const v = spawnSync('systemd-analyze', ['verify', path.join(dir, 'mirror-replay.service'), path.join(dir, 'mirror-replay-vxlan@vxlan0.service')], { encoding: 'utf8', cwd: dir });
  const ours = `${v.stdout}${v.stderr}`.split('\n').filter((l) => l.includes('mirror-replay'));
  assert.equal(v.status, 0, v.stderr);
  assert.deepEqual(ours, [], 'systemd-analyze has something to say about our units');
});

test('the default config.yaml is accepted by the daemon parser', async () => {
  const { parseArgs } = await import('../../src/cli/args.js');
  const cfg = parseArgs(['--config', path.join(ROOT, 'deploy/systemd/config.yaml')]);
  assert.deepEqual(cfg?.destinations, ['http://10.0.3.10']);
  assert.deepEqual(cfg?.interfaces, ['vxlan0']);
  assert.equal(cfg?.configFile, path.join(ROOT, 'deploy/systemd/config.yaml'));
});
