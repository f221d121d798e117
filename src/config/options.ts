/**
 * The Config turned into each part's plain options, once, at the top: nothing below config/ sees
 * a Config, and each part's options name only what that part needs.
 */
import { compareOptions } from '../compare/compare.js';
import type { DiffLogOptions } from '../compare/difflog.js';
import { parseJsonPath } from '../compare/json.js';
import type { ShadowOptions } from '../compare/shadow.js';
import { DEFAULT_HTTP_LIMITS } from '../http/types.js';
import type { CaptureOptions } from '../pipeline/capture.js';
import type { PolicyOptions, ReplayOptions } from '../replay/replayer.js';
import type { Config, ShadowConfig } from './config.js';

/** Largest JSON body kept per side for structural comparison. */
const JSON_CAPTURE_BYTES = 1024 * 1024;
const DIFF_LOG_KEEP = 3;

/** Settings SIGHUP does not apply: they size or bind something that lives as long as the process. */
export const RESTART_ONLY = ['shadow', 'destinations', 'interfaces', 'encapInterfaces', 'vnis', 'pcap', 'pcapEncap', 'port', 'metricsHost', 'metricsPort', 'healthCheckPort', 'maxConcurrency', 'maxQueue', 'maxQueueBytes', 'timeoutMs', 'ringMiB', 'ringBlockKiB', 'ringBlockTimeoutMs', 'workers', 'maxBodyBytes', 'maxFlowBufferBytes', 'memcapBytes', 'serviceAddresses', 'tlsInsecure', 'record', 'speed', 'loops', 'summaryJson'] as const satisfies ReadonlyArray<keyof Config>;

export function captureOptions(cfg: Config): CaptureOptions {
  return {
    pcap: cfg.pcap,
    speed: cfg.speed,
    loops: cfg.loops,
    interfaces: cfg.interfaces,
    encapInterfaces: cfg.encapInterfaces,
    pcapEncap: cfg.pcapEncap,
    workers: cfg.workers,
    ring: { ringMiB: cfg.ringMiB, blockKiB: cfg.ringBlockKiB, retireMs: cfg.ringBlockTimeoutMs },
    stages: {
      table: { port: cfg.port, maxFlowBufferBytes: cfg.maxFlowBufferBytes, memcapBytes: cfg.memcapBytes, holeTimeoutMs: cfg.holeTimeoutMs, idleTimeoutMs: cfg.idleTimeoutMs },
      limits: { ...DEFAULT_HTTP_LIMITS, maxBodyBytes: cfg.maxBodyBytes },
      encap: { vnis: cfg.vnis },
    },
  };
}

export function replayOptions(cfg: Config): ReplayOptions {
  return {
    destinations: cfg.destinations,
    ...policyOptions(cfg),
    maxConcurrency: cfg.maxConcurrency,
    maxQueue: cfg.maxQueue,
    maxQueueBytes: cfg.maxQueueBytes,
    timeoutMs: cfg.timeoutMs,
    tlsInsecure: cfg.tlsInsecure,
  };
}

/** The policy part of the config: what SIGHUP may reload. */
export function policyOptions(cfg: Config): PolicyOptions {
  return {
    keepHost: cfg.keepHostHeader,
    sampling: { percentage: cfg.percentage, by: cfg.percentageBy, header: cfg.percentageByHeader },
    rate: cfg.rate,
    routeRates: cfg.routeRates,
    copyHeader: cfg.copyHeader,
    filters: cfg.filters,
    rewrites: cfg.rewrites,
    markHeader: cfg.markHeader,
  };
}

export interface ShadowSetup {
  stage: ShadowOptions;
  diffLog: ({ path: string } & DiffLogOptions) | null;
}

/** Shadow testing's options; `destinations`: the replay's destination labels, in order (the baseline last). */
export function shadowOptions(s: ShadowConfig, destinations: string[]): ShadowSetup {
  return {
    stage: {
      compare: compareOptions(s.ignoreHeaders, [], s.jsonIgnore ? s.jsonIgnore.map(parseJsonPath) : null),
      routes: s.routes,
      snippetBytes: s.diffBodyBytes,
      captureJsonBytes: s.jsonIgnore ? JSON_CAPTURE_BYTES : 0,
      destinations,
      baseline: s.baseline === undefined ? -1 : destinations.length - 1,
    },
    diffLog: s.diffLog ? { path: s.diffLog, maxBytes: s.diffLogMaxBytes, keep: DIFF_LOG_KEEP, redact: s.redactHeaders } : null,
  };
}
