import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { exportedSeriesNames, selectedMetrics } from './promql.js';

const file = fileURLToPath(new URL('../../../deploy/grafana/mirror-replay.dashboard.json', import.meta.url));

interface Panel { id: number; title: string; type: string; gridPos: { x: number; y: number; w: number; h: number }; targets: Array<{ expr: string; refId: string }> }
const dashboard = JSON.parse(readFileSync(file, 'utf8')) as { uid: string; panels: Panel[]; templating: { list: Array<{ name: string }> } };
const targets = dashboard.panels.flatMap((p) => p.targets.map((t) => ({ panel: p.title, expr: t.expr })));

test('the dashboard is JSON with unique panel ids, each panel on the 24-column grid', () => {
  assert.equal(dashboard.uid, 'mirror-replay');
  const ids = dashboard.panels.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length);
  for (const p of dashboard.panels) {
    assert.ok(p.gridPos.x >= 0 && p.gridPos.x + p.gridPos.w <= 24, `${p.title} leaves the grid`);
    assert.ok(p.targets.length > 0, `${p.title} has no query`);
  }
  assert.deepEqual(dashboard.templating.list.map((v) => v.name), ['datasource', 'instance']);
});

test('every query reads only series the daemon exports (or up)', async () => {
  const known = await exportedSeriesNames();
  for (const t of targets) {
    const names = selectedMetrics(t.expr);
    assert.ok(names.length > 0, `${t.panel}: ${t.expr} selects nothing?`);
    for (const n of names) assert.ok(known.has(n) || n === 'up', `${t.panel} reads ${n}, which the daemon does not export`);
  }
});

test('the issue\'s panels are there: replayed vs dropped by reason, latency, queue, kernel drops, CPU, RSS', () => {
  const all = targets.map((t) => t.expr).join('\n');
  for (const m of [
    'mirror_replay_requests_replayed_total', 'mirror_replay_requests_dropped_total', 'mirror_replay_replay_duration_seconds_bucket',
    'mirror_replay_replay_queue_depth', 'mirror_replay_capture_kernel_drops_total', 'process_cpu_seconds_total', 'process_resident_memory_bytes',
  ]) assert.ok(all.includes(m), `no panel shows ${m}`);
  assert.ok(targets.some((t) => /sum by \(reason\) \(rate\(mirror_replay_requests_dropped_total/.test(t.expr)), 'drops are not broken down by reason');
});

test('a panel shows capture faults by kind, handler errors among them (alert MirrorReplayHandlerErrors), and one shows failures by code', () => {
  assert.ok(targets.some((t) => /by \([^)]*\bkind\b[^)]*\) \(increase\(mirror_replay_capture_errors_total\{/.test(t.expr) && !/kind=/.test(t.expr)), 'no panel shows mirror_replay_capture_errors_total by kind');
  assert.ok(targets.some((t) => /by \(code\) \(increase\(mirror_replay_errors_total\{/.test(t.expr)), 'no panel shows mirror_replay_errors_total by code');
});

test('a panel splits requests by protocol (issue #14): parsed and replayed, by protocol', () => {
  for (const m of ['mirror_replay_requests_parsed_total', 'mirror_replay_requests_replayed_total']) {
    assert.ok(targets.some((t) => new RegExp(`sum by \\(protocol\\) \\(rate\\(${m}\\{`).test(t.expr)), `no panel shows ${m} by protocol`);
  }
});

test('every query is valid PromQL (promtool, with the dashboard variables filled in)', (t) => {
  if (spawnSync('promtool', ['--version']).status !== 0) {
    if (process.env.CI === 'true') assert.fail('promtool not found: install the Debian package prometheus');
    t.skip('promtool not installed (Debian package prometheus)');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'mr-grafana-'));
  try {
    const rules = targets.map((x, i) => {
      const expr = x.expr.replaceAll('$__rate_interval', '5m').replaceAll('$instance', '.*');
      return `      - record: dashboard:query_${i}\n        expr: ${JSON.stringify(expr)}\n`;
    });
    writeFileSync(join(dir, 'queries.yml'), `groups:\n  - name: dashboard\n    rules:\n${rules.join('')}`);
    const r = spawnSync('promtool', ['check', 'rules', 'queries.yml'], { cwd: dir, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
