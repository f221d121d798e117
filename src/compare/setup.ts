import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import type { Metrics } from '../metrics/registry.js';
import { CompareMetrics } from '../metrics/compare.js';
import { FlowTable, type TableOptions } from '../reassemble/table.js';
import { compareOptions } from './compare.js';
import { DiffLog } from './difflog.js';
import { parseJsonPath } from './json.js';
import { Shadow } from './shadow.js';

/** Largest JSON body kept per side for structural comparison. */
const JSON_CAPTURE_BYTES = 1024 * 1024;
const DIFF_LOG_KEEP = 3;

/**
 * Shadow testing's part of the pipeline: the stage itself and the table that reassembles
 * production's responses (server to client), sized like the requests' table.
 */
export function startShadow(cfg: Config, metrics: Metrics, destinationLabels: string[], table: Partial<TableOptions> & { port: number }, log: Logger): { shadow: Shadow; responses: FlowTable } {
  const s = cfg.shadow!;
  const baseline = s.baseline === undefined ? -1 : destinationLabels.length - 1;
  const candidates = destinationLabels.filter((_, i) => i !== baseline);
  const cm = new CompareMetrics(metrics.registry, candidates, s.routes);
  const diffLog = s.diffLog ? new DiffLog(s.diffLog, { maxBytes: s.diffLogMaxBytes, keep: DIFF_LOG_KEEP, redact: s.redactHeaders }) : null;
  const shadow = new Shadow(
    {
      compare: compareOptions(s.ignoreHeaders, [], s.jsonIgnore ? s.jsonIgnore.map(parseJsonPath) : null),
      routes: s.routes,
      snippetBytes: s.diffBodyBytes,
      captureJsonBytes: s.jsonIgnore ? JSON_CAPTURE_BYTES : 0,
      destinations: destinationLabels,
      baseline,
    },
    cm,
    diffLog,
    log,
  );
  const responses = new FlowTable({ ...table, direction: 'to_client' }, (info, midstream) => shadow.responseSink(info, midstream));
  log.info({ compared: candidates, baseline: baseline >= 0 ? destinationLabels[baseline] : null, diffLog: s.diffLog ?? null, routes: s.routes }, 'shadow testing: comparing answers with production');
  return { shadow, responses };
}

/** Server-to-client segments a responses table has seen (its other-direction count is the client's). */
export function responseSegments(t: FlowTable): number {
  return t.event('segments') - t.event('server_segments');
}
