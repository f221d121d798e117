/**
 * `mirror-replay doctor` in the namespace lab, once per mismatch it claims to detect: nothing
 * arriving (the mirror's VXLAN device is down), a wrong VNI, an interface that is down; and the
 * healthy case.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { Lab, ROOT, TEST_HOST } from '../../scripts/lab/harness.js';

const isRoot = process.getuid?.() === 0;
const inCI = process.env.CI === 'true';
const skip = !isRoot && !inCI ? 'needs root for network namespaces (run as root, or in CI)' : false;
const VXLAN_UP = path.join(ROOT, 'scripts/vxlan-up.sh');
const VXLAN_DOWN = path.join(ROOT, 'scripts/vxlan-down.sh');
const MAIN = path.join(ROOT, 'dist/src/cli/main.js');

let lab: Lab;

/** Runs doctor on the adapter (optionally while the client sends load) and returns its output. */
async function doctor(withTraffic: boolean): Promise<{ code: number | null; out: string }> {
  const load = withTraffic ? lab.client('load', ['--requests', '100000', '--connections', '1', '--max-seconds', '5'], 60_000) : null;
  if (load) await new Promise((r) => setTimeout(r, 500));
  const p = spawn('ip', ['netns', 'exec', lab.ns('adapter'), process.execPath, MAIN, 'doctor', '--seconds', '2', '--destination', `http://${TEST_HOST}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.on('data', (d) => (out += d));
  p.stderr.on('data', (d) => (out += d));
  const code = await new Promise<number | null>((r) => p.on('exit', r));
  await load;
  console.log(out.trimEnd());
  return { code, out };
}

function line(out: string, re: RegExp): string {
  const l = out.split('\n').find((x) => re.test(x));
  assert.ok(l, `no line matching ${re} in:\n${out}`);
  return l;
}

before(async () => {
  if (skip) return;
  if (!isRoot) throw new Error('CI=true but not root: the lab needs root for network namespaces');
  lab = new Lab(`mr-doc-${process.pid}`);
  await lab.up();
  await lab.startRecorders();
});

after(async () => {
  if (lab) await lab.down();
});

test('doctor: nothing arriving points at security groups, NACLs and the session filter', { skip, timeout: 60_000 }, async () => {
  // The mirror stops sending, as when a security group drops UDP 4789.
  assert.equal(lab.run('prod', 'ip', ['link', 'set', 'mirror0', 'down']).status, 0);
  try {
    const { code, out } = await doctor(true);
    assert.equal(code, 1);
    const l = line(out, /^error +traffic eth0: no VXLAN datagrams arrived on eth0/);
    assert.match(l, /fix: .*UDP 4789.*security group.*network ACLs.*filter/);
    line(out, /^ok +interface vxlan0: vxlan0 is up: VNI 1, UDP port 4789, device eth0/);
    line(out, /^ok +capability:/);
    line(out, new RegExp(`^ok +destination http://${TEST_HOST.replace(/\./g, '\\.')}: `));
  } finally {
    lab.run('prod', 'ip', ['link', 'set', 'mirror0', 'up']);
  }
});

test('doctor: the mirror sends VNI 1 while vxlan0 has VNI 7 — both named, with the fix', { skip, timeout: 60_000 }, async () => {
  assert.equal(lab.run('adapter', 'bash', [VXLAN_DOWN]).status, 0);
  assert.equal(lab.run('adapter', 'bash', [VXLAN_UP, '--vni', '7', '--dev', 'eth0']).status, 0);
  const { code, out } = await doctor(true);
  assert.equal(code, 1);
  const l = line(out, /^error +vni: mirror session uses VNI 1, vxlan0 has VNI 7/);
  assert.match(l, /fix: make them equal: scripts\/vxlan-down\.sh --name vxlan0 && scripts\/vxlan-up\.sh --vni 1 --name vxlan0 --dev eth0, or set the mirror session's VNI to 7/);
});

test('doctor: with matching VNIs and traffic, every check is ok', { skip, timeout: 60_000 }, async () => {
  assert.equal(lab.run('adapter', 'bash', [VXLAN_DOWN]).status, 0);
  assert.equal(lab.run('adapter', 'bash', [VXLAN_UP, '--vni', '1', '--dev', 'eth0']).status, 0);
  const { code, out } = await doctor(true);
  assert.equal(code, 0, out);
  line(out, /^ok +vni: mirror session uses VNI 1, vxlan0 has VNI 1: they match/);
  line(out, /^ok +truncation eth0: no truncated packets/);
  assert.ok(!/^(error|warning) /m.test(out), out);
});

test('doctor: an interface that is down is an error with the fix', { skip, timeout: 60_000 }, async () => {
  assert.equal(lab.run('adapter', 'ip', ['link', 'set', 'vxlan0', 'down']).status, 0);
  const { code, out } = await doctor(false);
  assert.equal(code, 1);
  const l = line(out, /^error +interface vxlan0: vxlan0 is down/);
  assert.match(l, /fix: ip link set vxlan0 up/);
});
