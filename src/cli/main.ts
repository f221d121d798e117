#!/usr/bin/env -S node --max-semi-space-size=1 --max-old-space-size=512
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { pino, type Logger } from 'pino';
import type { Config } from '../config/config.js';
import type { Metrics } from '../metrics/registry.js';
import { MirrorReplayError, StartError } from '../errors.js';
import { parseArgs } from './args.js';
import { startDaemon } from '../daemon.js';
import { summaryJson, summaryText } from '../metrics/summary.js';
import { systemdNotifier, type Notifier } from '../ops/notify.js';
import { runDoctor } from './doctor.js';
import { runReport } from './report.js';

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  if (argv[0] === 'doctor') return runDoctor(argv.slice(1));
  if (argv[0] === 'report') return runReport(argv.slice(1));
  if (argv[0] === 'version') {
    process.stdout.write(`mirror-replay ${version()}\n`);
    return 0;
  }
  if (argv[0] === 'config' && argv[1] === 'check') return configCheck(argv.slice(2));
  let cfg;
  try {
    cfg = parseArgs(argv);
  } catch (e) {
    process.stderr.write(`mirror-replay: ${(e as Error).message}\nTry mirror-replay --help\n`);
    return 2;
  }
  if (!cfg) return 0;
  const log = pino({ level: cfg.logLevel, base: { pid: process.pid } }, pino.destination({ fd: 2, sync: false }));
  let notifier: Notifier | undefined;
  try {
    notifier = systemdNotifier();
  } catch (e) {
    log.warn({ err: e }, 'NOTIFY_SOCKET is set but unusable: systemd will not hear READY=1');
  }
  let daemon;
  try {
    daemon = await startDaemon(cfg, log, { notifier });
  } catch (e) {
    // Known failures (bad flag, missing interface, no CAP_NET_RAW) are one clear line; only the
    // unexpected ones get a stack in the log.
    if (!(e instanceof MirrorReplayError)) log.fatal({ err: e, code: StartError.code }, 'could not start');
    process.stderr.write(`mirror-replay: ${(e as Error).message}\n`);
    log.flush();
    return 1;
  }
  const onSignal = (sig: string) => {
    log.info({ signal: sig }, 'stopping: draining replays');
    void daemon.stop();
  };
  process.once('SIGTERM', () => onSignal('SIGTERM'));
  process.once('SIGINT', () => onSignal('SIGINT'));
  const configFile = cfg.configFile;
  process.on('SIGHUP', () => {
    if (!configFile) {
      log.warn('SIGHUP ignored: no --config file to re-read');
      return;
    }
    try {
      const next = parseArgs(argv);
      if (next) daemon.reload(next);
    } catch (e) {
      daemon.metrics.failure((e as { code?: string }).code);
      log.error({ err: e, code: (e as { code?: string }).code }, 'reload failed: the previous policy stays in force');
    }
  });
  let code = await daemon.done;
  const failure = daemon.failure();
  if (failure) process.stderr.write(`mirror-replay: ${failure.message}\n`);
  code = await endOfRun(cfg, daemon.metrics, log, code);
  notifier?.close();
  log.flush();
  return code;
}

/** The last word on every request: the log line, the stdout line of a file run, the summary (text and --summary-json). Returns the exit code. */
async function endOfRun(cfg: Config, m: Metrics, log: Logger, code: number): Promise<number> {
  const summary = {
    parsed: await m.total('mirror_replay_requests_parsed_total'),
    replayed: await m.total('mirror_replay_requests_replayed_total'),
    dropped: await m.total('mirror_replay_requests_dropped_total'),
    kernelDrops: await m.total('mirror_replay_capture_kernel_drops_total'),
    // By reason, so the last word on every request survives the metrics server closing.
    droppedByReason: await m.byLabel('mirror_replay_requests_dropped_total', 'reason'),
  };
  log.info(summary, 'stopped');
  const full = await summaryJson(m.registry);
  if (cfg.pcap) process.stderr.write(summaryText(full));
  if (cfg.summaryJson === '-') process.stdout.write(`${JSON.stringify(full)}\n`);
  else if (cfg.pcap) process.stdout.write(`${JSON.stringify(summary)}\n`);
  if (cfg.summaryJson && cfg.summaryJson !== '-') {
    try {
      fs.writeFileSync(cfg.summaryJson, `${JSON.stringify(full, null, 2)}\n`);
    } catch (e) {
      process.stderr.write(`mirror-replay: --summary-json ${cfg.summaryJson}: ${(e as Error).message}\n`);
      return code || 1;
    }
  }
  return code;
}

function version(): string {
  const pkg = createRequire(import.meta.url)('../../../package.json') as { version: string };
  return pkg.version;
}

/** `mirror-replay config check [flags]`: validate flags, env and --config; print the effective values. */
function configCheck(argv: string[]): number {
  try {
    const cfg = parseArgs(argv);
    if (!cfg) return 0;
    process.stdout.write(`${JSON.stringify(cfg, null, 2)}\nconfiguration ok\n`);
    return 0;
  } catch (e) {
    process.stderr.write(`mirror-replay: ${(e as Error).message}\n`);
    return 2;
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    process.stderr.write(`mirror-replay: unexpected error: ${(e as Error).stack ?? e}\n`);
    process.exitCode = 70;
  },
);
