import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { exportedSeriesNames, selectedMetrics } from './promql.js';

const dir = fileURLToPath(new URL('../../../deploy/prometheus/', import.meta.url));
const rulesFile = 'mirror-replay.rules.yml';

interface Rule { record?: string; alert?: string; expr: string }
const groups = (parse(readFileSync(dir + rulesFile, 'utf8')) as { groups: Array<{ rules: Rule[] }> }).groups;
const rules = groups.flatMap((g) => g.rules);

function havePromtool(t: { skip(msg: string): void }): boolean {
  if (spawnSync('promtool', ['--version']).status === 0) return true;
  // CI installs Debian's prometheus package, which ships promtool: there the tests must run.
  if (process.env.CI === 'true') assert.fail('promtool not found: install the Debian package prometheus');
  t.skip('promtool not installed (Debian package prometheus)');
  return false;
}

function promtool(...args: string[]): string {
  const r = spawnSync('promtool', args, { cwd: dir, encoding: 'utf8' });
  assert.equal(r.status, 0, `promtool ${args.join(' ')} failed:\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

test('promtool check rules accepts the rules', (t) => {
  if (!havePromtool(t)) return;
  assert.match(promtool('check', 'rules', rulesFile), /SUCCESS: \d+ rules found/);
});

test('promtool test rules: every alert fires when it should and stays quiet otherwise', (t) => {
  if (!havePromtool(t)) return;
  assert.match(promtool('test', 'rules', 'mirror-replay.rules.test.yml'), /SUCCESS/);
});

test('promtool check config accepts the example scrape configuration', (t) => {
  if (!havePromtool(t)) return;
  promtool('check', 'config', 'scrape.example.yml');
});

test('the issue\'s five alerts exist, and each has a unit test', () => {
  const alerts = rules.filter((r) => r.alert).map((r) => r.alert!);
  for (const a of ['MirrorReplayDown', 'MirrorReplayKernelDrops', 'MirrorReplayDropRateHigh', 'MirrorReplayReplayErrors', 'MirrorReplayNoFrames']) {
    assert.ok(alerts.includes(a), `missing alert ${a}`);
  }
  const tests = readFileSync(dir + 'mirror-replay.rules.test.yml', 'utf8');
  for (const a of alerts) assert.match(tests, new RegExp(`alertname: ${a}\\b`), `${a} has no alert_rule_test`);
});

test('rules read only series the daemon exports (or up, or the recorded ones)', async () => {
  const known = await exportedSeriesNames();
  const recorded = new Set(rules.filter((r) => r.record).map((r) => r.record!));
  for (const r of rules) {
    const names = selectedMetrics(r.expr);
    assert.ok(names.length > 0, `${r.alert ?? r.record} selects nothing?`);
    for (const n of names) assert.ok(known.has(n) || recorded.has(n) || n === 'up', `${r.alert ?? r.record} reads ${n}, which the daemon does not export`);
  }
});

test('the loss rate leaves out the drops an operator chose, and only those', () => {
  const lost = rules.find((r) => r.record === 'mirror_replay:requests_lost:rate5m')!;
  assert.match(lost.expr, /reason!~"sampled_out\|filtered\|rate_limited\|protocol_mismatch"/);
});

test('selectedMetrics finds metric names and ignores functions, labels and variables', () => {
  assert.deepEqual(
    selectedMetrics('histogram_quantile(0.99, sum by (le, destination) (rate(mirror_replay_replay_duration_seconds_bucket{destination=~"$destination"}[$__rate_interval])))'),
    ['mirror_replay_replay_duration_seconds_bucket'],
  );
  assert.deepEqual(selectedMetrics('a:b / on(instance) (up == 0) and absent(x_total offset 5m)'), ['a:b', 'up', 'x_total']);
});

