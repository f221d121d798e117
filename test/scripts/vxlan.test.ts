/**
 * scripts/vxlan-up.sh and scripts/vxlan-down.sh, run inside a network namespace made for the
 * test (mr-t-<pid>-vx) with a veth pair standing in for the adapter's NIC. Needs root.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../../scripts/lab/harness.js';

const UP = join(ROOT, 'scripts', 'vxlan-up.sh');
const DOWN = join(ROOT, 'scripts', 'vxlan-down.sh');
const NS = `mr-t-${process.pid}-vx`;
const TIMEOUT_MS = 15_000;

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[]): Run {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: TIMEOUT_MS });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs a script inside the test namespace, as the daemon's operator would. */
function inNs(script: string, args: string[]): Run {
  return run('ip', ['netns', 'exec', NS, 'bash', script, ...args]);
}

function must(cmd: string, args: string[]): void {
  const r = run(cmd, args);
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')}: ${r.stderr}`);
}

/** Returns false (after t.skip) when the test cannot run; fails loudly in CI. */
function haveRoot(t: TestContext): boolean {
  if (process.getuid?.() === 0) return true;
  if (process.env.CI === 'true') {
    assert.fail('needs root for network namespaces: CI must run these tests as root');
  }
  t.skip('needs root for network namespaces');
  return false;
}

interface VxlanInfo {
  kind: string;
  vni: number;
  port: number;
  dev: string;
  up: boolean;
  groMaxSize: number | undefined;
}

function linkInfo(name: string): VxlanInfo | undefined {
  const r = run('ip', ['-n', NS, '-d', '-j', 'link', 'show', 'dev', name]);
  if (r.status !== 0) return undefined;
  const [link] = JSON.parse(r.stdout) as Array<{
    flags: string[];
    gro_max_size?: number;
    linkinfo?: { info_kind?: string; info_data?: { id?: number; port?: number; link?: string } };
  }>;
  const data = link.linkinfo?.info_data ?? {};
  return {
    kind: link.linkinfo?.info_kind ?? '',
    vni: data.id ?? -1,
    port: data.port ?? -1,
    dev: data.link ?? '',
    up: link.flags.includes('UP'),
    groMaxSize: link.gro_max_size,
  };
}

test('vxlan-up.sh / vxlan-down.sh in a namespace', async (t) => {
  if (!haveRoot(t)) return;
  run('ip', ['netns', 'del', NS]); // a leftover of a killed run with the same pid
  must('ip', ['netns', 'add', NS]);
  try {
    must('ip', ['-n', NS, 'link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1']);
    must('ip', ['-n', NS, 'link', 'set', 'v0', 'up']);
    must('ip', ['-n', NS, 'link', 'set', 'v1', 'up']);

    await t.test('usage errors exit 2', () => {
      for (const args of [[], ['--vni'], ['--vni', '1', '--bogus'], ['--dev', 'v0'], ['up']]) {
        const r = inNs(UP, args);
        assert.equal(r.status, 2, `vxlan-up ${args.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr, /usage:|required|needs a value/);
      }
      assert.equal(inNs(DOWN, ['--bogus']).status, 2);
      assert.equal(inNs(DOWN, ['--name']).status, 2);
      assert.equal(inNs(UP, ['--help']).status, 0);
    });

    await t.test('bad VNI exits 3, bad port 4, bad name 10', () => {
      for (const vni of ['0', '16777216', 'abc', '-1', '1.5', '', '99999999999999999999']) {
        const r = inNs(UP, ['--vni', vni, '--dev', 'v0']);
        // An empty --vni is the same as none: a usage error.
        assert.equal(r.status, vni === '' ? 2 : 3, `vni ${JSON.stringify(vni)}: ${r.stderr}`);
      }
      for (const port of ['0', '65536', 'x']) {
        const r = inNs(UP, ['--vni', '1', '--dev', 'v0', '--port', port]);
        assert.equal(r.status, 4, `port ${port}: ${r.stderr}`);
      }
      for (const name of ['a/b', 'x'.repeat(16), 'a b', '..']) {
        assert.equal(inNs(UP, ['--vni', '1', '--dev', 'v0', '--name', name]).status, 10, `name ${name}`);
        assert.equal(inNs(DOWN, ['--name', name]).status, 10, `down name ${name}`);
      }
      assert.equal(linkInfo('vxlan0'), undefined, 'nothing was created');
    });

    await t.test('a device that does not exist exits 5', () => {
      const r = inNs(UP, ['--vni', '1', '--dev', 'nosuch0']);
      assert.equal(r.status, 5, r.stderr);
      assert.match(r.stderr, /nosuch0/);
    });

    await t.test('no --dev and no default route exits 9 and says to pass --dev', () => {
      const r = inNs(UP, ['--vni', '1']);
      assert.equal(r.status, 9, r.stderr);
      assert.match(r.stderr, /--dev/);
    });

    await t.test('without CAP_NET_ADMIN it exits 8', (st) => {
      if (run('sh', ['-c', 'command -v setpriv']).status !== 0) return st.skip('setpriv (util-linux) not installed');
      const r = run('ip', ['netns', 'exec', NS, 'setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', 'bash', UP, '--vni', '1', '--dev', 'v0']);
      assert.equal(r.status, 8, r.stderr);
      assert.match(r.stderr, /not permitted/);
      assert.equal(linkInfo('vxlan0'), undefined);
    });

    await t.test('creates a vxlan with the VNI, port and device asked for, and brings it up', () => {
      const r = inNs(UP, ['--vni', '4242', '--dev', 'v0', '--port', '4790']);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /created vxlan0/);
      assert.match(r.stdout, /mtu 1450/);
      const info = linkInfo('vxlan0');
      assert.ok(info, 'vxlan0 exists');
      const { kind, vni, port, dev, up } = info;
      assert.deepEqual({ kind, vni, port, dev, up }, { kind: 'vxlan', vni: 4242, port: 4790, dev: 'v0', up: true });
    });

    await t.test('the same again is a no-op that exits 0, and brings it back up', () => {
      must('ip', ['-n', NS, 'link', 'set', 'vxlan0', 'down']);
      const r = inNs(UP, ['--vni', '4242', '--dev', 'v0', '--port', '4790']);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /vxlan0 already exists with vni 4242 dev v0 port 4790; nothing to do/);
      assert.equal(linkInfo('vxlan0')?.up, true);
    });

    await t.test('other settings exit 6 naming each difference, and leave it alone', () => {
      let r = inNs(UP, ['--vni', '7', '--dev', 'v0', '--port', '4790']);
      assert.equal(r.status, 6, r.stderr);
      assert.match(r.stderr, /vxlan0 exists with vni 4242, wanted 7/);
      assert.doesNotMatch(r.stderr, /dev v0, wanted|port 4790, wanted/);

      r = inNs(UP, ['--vni', '7', '--dev', 'v1']);
      assert.equal(r.status, 6, r.stderr);
      assert.match(r.stderr, /vni 4242, wanted 7; dev v0, wanted v1; port 4790, wanted 4789/);
      assert.equal(linkInfo('vxlan0')?.vni, 4242);
    });

    await t.test('a name taken by something that is not a vxlan exits 6, up and down', () => {
      let r = inNs(UP, ['--vni', '1', '--dev', 'v0', '--name', 'v1']);
      assert.equal(r.status, 6, r.stderr);
      assert.match(r.stderr, /v1 exists and is not a vxlan \(kind: veth\)/);
      r = inNs(DOWN, ['--name', 'v1']);
      assert.equal(r.status, 6, r.stderr);
      assert.equal(linkInfo('v1')?.kind, 'veth', 'v1 is still there');
    });

    await t.test('down deletes it; down again is a no-op that exits 0', () => {
      let r = inNs(DOWN, []);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /deleted vxlan0 \(vxlan id 4242\)/);
      assert.equal(linkInfo('vxlan0'), undefined);
      r = inNs(DOWN, ['--name', 'vxlan0']);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /vxlan0 does not exist; nothing to do/);
    });

    await t.test('without --dev it takes the default route device; --no-gro sets gro_max_size 0', () => {
      must('ip', ['-n', NS, 'addr', 'add', '10.213.9.1/24', 'dev', 'v0']);
      must('ip', ['-n', NS, 'route', 'add', 'default', 'via', '10.213.9.2', 'dev', 'v0']);
      const r = inNs(UP, ['--vni', '16777215', '--name', 'mirror7', '--no-gro']);
      assert.equal(r.status, 0, r.stderr);
      const info = linkInfo('mirror7');
      assert.equal(info?.vni, 16777215);
      assert.equal(info?.dev, 'v0');
      assert.equal(info?.port, 4789);
      assert.equal(info?.groMaxSize, 0);
      assert.equal(inNs(DOWN, ['--name', 'mirror7']).status, 0);
      assert.equal(linkInfo('mirror7'), undefined);
    });
  } finally {
    run('ip', ['netns', 'del', NS]);
  }
  assert.equal(existsSync(`/run/netns/${NS}`), false, `namespace ${NS} was not removed`);
});
