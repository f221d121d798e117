// What the infrastructure and the daemon must agree on, in one place.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** AWS Traffic Mirroring always sends VXLAN to UDP 4789. */
export const VXLAN_PORT = 4789;
/** A Gateway Load Balancer wraps every packet for its appliances in GENEVE on UDP 6081. */
export const GENEVE_PORT = 6081;
/** The daemon's --health-check-port on the adapters (TCP, accepts only while healthy). */
export const HEALTH_CHECK_PORT = 8079;
/** The daemon's --metrics-port (/metrics, /healthz). */
export const METRICS_PORT = 9464;
/** The VXLAN interface that scripts/install-systemd.sh and mirror-replay-vxlan@.service manage. */
export const VXLAN_INTERFACE = 'vxlan0';
/** Return ports: Linux uses 32768-60999 and the NAT gateway 1024-65535, so NACLs allow the union. */
export const EPHEMERAL_PORTS = { from: 1024, to: 65535 } as const;
/** Tag Prometheus's ec2_sd_configs selects adapters by (deploy/prometheus/scrape.example.yml). */
export const ADAPTER_TAG = { key: 'mirror-replay:role', value: 'adapter' } as const;

/** Tag the fleet construct puts on every mirror session it creates (value: the stack's name); lambda/fleet-sessions.mts has its own copy. */
export const FLEET_SESSION_TAG = 'mirror-replay:fleet';
/** Default tag that marks production instances the fleet construct mirrors (value: the stack's name). */
export const FLEET_SOURCE_TAG = 'mirror-replay:mirror-source';
/** CloudWatch namespace of the fleet construct's metrics. */
export const FLEET_METRIC_NAMESPACE = 'MirrorReplay';

/** This checkout's package version, so a stack installs the daemon it was built with by default. */
export function packageVersion(): string {
  // deploy/aws/lib/ in the source tree, dist/deploy/aws/lib/ once compiled.
  for (let dir = dirname(fileURLToPath(import.meta.url)); dir !== dirname(dir); dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'mirror-replay' && pkg.version) return pkg.version;
    } catch {
      // no package.json here: keep walking up
    }
  }
  throw new Error('package.json of mirror-replay not found above deploy/aws');
}
