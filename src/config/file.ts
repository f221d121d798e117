/**
 * The `--config FILE` loader: YAML (which includes JSON) mapping long flag names to values,
 * e.g. `destination: [http://10.0.0.37]`, `percentage: 10`, `drain-timeout: 30s`.
 * Read at startup and again on SIGHUP.
 */
import fs from 'node:fs';
import { parse } from 'yaml';
import { ConfigError } from '../errors.js';

export function loadConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`--config ${file}: cannot read it: ${(e as Error).message}`, { cause: e });
  }
  let doc: unknown;
  try {
    doc = parse(text, { prettyErrors: true });
  } catch (e) {
    throw new ConfigError(`--config ${file}: not valid YAML or JSON: ${(e as Error).message}`, { cause: e });
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError(`--config ${file}: expected a mapping of flag names to values, e.g. "destination: http://10.0.0.37"`);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(doc)) {
    if (k === 'config') throw new ConfigError(`--config ${file}: a config file cannot name another config file`);
    // Written as a flag would be on the command line; yargs maps them to options.
    out[k.replace(/^--?/, '')] = v;
  }
  return out;
}
