// Lambda handler of the fleet construct (lib/fleet.ts): EC2 instance state-change events in,
// traffic mirror sessions out. On `running`, every ENI of a selected instance gets a session with
// the stack's filter, target and VNI; on `terminated`, the sessions made for it are deleted.
//
// Self-contained on purpose: the asset is this one compiled file, and the Lambda runtime provides
// the AWS SDK v3 (no bundler, no node_modules in the asset).
import { createHash } from 'node:crypto';
import {
  CreateTrafficMirrorSessionCommand, DeleteTrafficMirrorSessionCommand, DescribeInstancesCommand, EC2Client,
  paginateDescribeTrafficMirrorSessions, type Instance, type TrafficMirrorSession,
} from '@aws-sdk/client-ec2';
import { CloudWatchClient, PutMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';

/** What the construct passes in the function's environment. */
export interface FleetConfig {
  readonly targetId: string;
  readonly filterId: string;
  readonly vni: number;
  readonly sessionNumber: number;
  /** Instances carrying this tag are mirrored (an Auto Scaling group: `aws:autoscaling:groupName`). */
  readonly selectTagKey: string;
  /** The tag's value; empty: any value. */
  readonly selectTagValue: string;
  /** Value of the `mirror-replay:fleet` tag on every session made here (the stack's name). */
  readonly fleet: string;
  readonly topicArn: string;
  readonly metricNamespace: string;
}

export const SESSION_TAG = 'mirror-replay:fleet';
export const INSTANCE_TAG = 'mirror-replay:instance-id';
/** Metric counting ENIs that got no session, by Fleet and Reason (unsupported, quota). */
export const UNMIRRORED_METRIC = 'UnmirroredNetworkInterfaces';

/**
 * Error codes of CreateTrafficMirrorSession that retrying cannot fix, with the reason reported.
 * NetworkInterfaceNotSupported is the EC2 API's "The network interface is not supported for
 * Traffic Mirroring" (instance types the Traffic Mirroring guide lists as unsupported sources).
 */
export const UNMIRRORABLE: Readonly<Record<string, 'unsupported' | 'quota'>> = {
  NetworkInterfaceNotSupported: 'unsupported',
  TrafficMirrorSessionsPerInterfaceLimitExceeded: 'quota',
  TrafficMirrorSessionLimitExceeded: 'quota',
  TrafficMirrorSourcesPerTargetLimitExceeded: 'quota',
};

export function configFromEnv(env: NodeJS.ProcessEnv): FleetConfig {
  const need = (k: string): string => {
    const v = env[k];
    if (!v) throw new Error(`fleet-sessions: environment variable ${k} is not set`);
    return v;
  };
  const int = (k: string, lo: number, hi: number): number => {
    const n = Number(need(k));
    if (!Number.isInteger(n) || n < lo || n > hi) throw new Error(`fleet-sessions: ${k} must be an integer ${lo}-${hi}, got ${env[k]}`);
    return n;
  };
  return {
    targetId: need('TARGET_ID'),
    filterId: need('FILTER_ID'),
    vni: int('VNI', 0, 16777215),
    sessionNumber: int('SESSION_NUMBER', 1, 32766),
    selectTagKey: need('SELECT_TAG_KEY'),
    selectTagValue: env.SELECT_TAG_VALUE ?? '',
    fleet: need('FLEET'),
    topicArn: need('TOPIC_ARN'),
    metricNamespace: need('METRIC_NAMESPACE'),
  };
}

/** The part of an EventBridge "EC2 Instance State-change Notification" read here. */
export interface StateChangeEvent {
  readonly id: string;
  readonly 'detail-type'?: string;
  readonly detail: { readonly 'instance-id': string; readonly state: string };
}

export interface Unmirrored { readonly eni: string; readonly reason: 'unsupported' | 'quota'; readonly code: string; readonly message: string }

export interface Outcome {
  readonly instanceId: string;
  readonly action: 'mirrored' | 'ignored' | 'cleaned' | 'other-state';
  readonly created: string[];
  readonly existing: string[];
  readonly deleted: string[];
  readonly unmirrored: Unmirrored[];
}

export interface Clients {
  readonly ec2: EC2Client;
  readonly cloudwatch: CloudWatchClient;
  readonly sns: SNSClient;
}

let defaultClients: Clients | undefined;

export async function handler(event: StateChangeEvent): Promise<Outcome> {
  defaultClients ??= { ec2: new EC2Client({}), cloudwatch: new CloudWatchClient({}), sns: new SNSClient({}) };
  const outcome = await handleEvent(event, configFromEnv(process.env), defaultClients);
  console.log(JSON.stringify(outcome));
  return outcome;
}

export async function handleEvent(event: StateChangeEvent, cfg: FleetConfig, c: Clients): Promise<Outcome> {
  const instanceId = event.detail?.['instance-id'];
  if (!instanceId) throw new Error(`fleet-sessions: event ${event.id} has no detail.instance-id`);
  const state = event.detail.state;
  if (state === 'running') return mirrorInstance(event.id, instanceId, cfg, c);
  if (state === 'terminated') return cleanUp(instanceId, cfg, c);
  return { instanceId, action: 'other-state', created: [], existing: [], deleted: [], unmirrored: [] };
}

async function mirrorInstance(eventId: string, instanceId: string, cfg: FleetConfig, c: Clients): Promise<Outcome> {
  const out: Outcome = { instanceId, action: 'mirrored', created: [], existing: [], deleted: [], unmirrored: [] };
  const instance = await describeInstance(instanceId, c.ec2);
  if (!selected(instance, cfg)) return { ...out, action: 'ignored' };
  for (const ni of instance.NetworkInterfaces ?? []) {
    const eni = ni.NetworkInterfaceId;
    if (!eni) continue;
    const mine = (await sessionsOn(eni, c.ec2)).find((s) => s.TrafficMirrorTargetId === cfg.targetId);
    if (mine?.TrafficMirrorSessionId) {
      out.existing.push(mine.TrafficMirrorSessionId);
      continue;
    }
    try {
      out.created.push(await createSession(eventId, instanceId, eni, cfg, c.ec2));
    } catch (e) {
      const code = errorCode(e);
      const reason = UNMIRRORABLE[code];
      if (!reason) throw e; // throttling, permissions, ...: Lambda retries, then the failure destination hears of it
      out.unmirrored.push({ eni, reason, code, message: (e as Error).message });
    }
  }
  if (out.unmirrored.length > 0) await report(instance, out.unmirrored, cfg, c);
  return out;
}

async function describeInstance(instanceId: string, ec2: EC2Client): Promise<Instance> {
  const r = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }));
  const instance = r.Reservations?.flatMap((x) => x.Instances ?? []).find((i) => i.InstanceId === instanceId);
  // Thrown, not skipped: DescribeInstances is eventually consistent, and the retry will see it.
  if (!instance) throw new Error(`fleet-sessions: DescribeInstances does not know ${instanceId} yet`);
  return instance;
}

function selected(instance: Instance, cfg: FleetConfig): boolean {
  const tag = instance.Tags?.find((t) => t.Key === cfg.selectTagKey);
  return tag !== undefined && (cfg.selectTagValue === '' || tag.Value === cfg.selectTagValue);
}

async function sessionsOn(eni: string, ec2: EC2Client): Promise<TrafficMirrorSession[]> {
  const all: TrafficMirrorSession[] = [];
  const pages = paginateDescribeTrafficMirrorSessions({ client: ec2 }, { Filters: [{ Name: 'network-interface-id', Values: [eni] }] });
  for await (const page of pages) all.push(...(page.TrafficMirrorSessions ?? []));
  return all;
}

async function createSession(eventId: string, instanceId: string, eni: string, cfg: FleetConfig, ec2: EC2Client): Promise<string> {
  const r = await ec2.send(new CreateTrafficMirrorSessionCommand({
    NetworkInterfaceId: eni,
    TrafficMirrorTargetId: cfg.targetId,
    TrafficMirrorFilterId: cfg.filterId,
    SessionNumber: cfg.sessionNumber,
    VirtualNetworkId: cfg.vni,
    Description: `mirror-replay fleet ${cfg.fleet}: ${instanceId}`,
    // The same event delivered twice at once: EC2 returns the first call's session, not a second one.
    ClientToken: createHash('sha256').update(`${eventId}:${eni}`).digest('hex').slice(0, 64),
    TagSpecifications: [{
      ResourceType: 'traffic-mirror-session',
      Tags: [{ Key: SESSION_TAG, Value: cfg.fleet }, { Key: INSTANCE_TAG, Value: instanceId }],
    }],
  }));
  const id = r.TrafficMirrorSession?.TrafficMirrorSessionId;
  if (!id) throw new Error(`fleet-sessions: CreateTrafficMirrorSession on ${eni} returned no session id`);
  return id;
}

/** One metric datum per reason and one SNS message per instance: someone hears of every ENI left out. */
async function report(instance: Instance, unmirrored: Unmirrored[], cfg: FleetConfig, c: Clients): Promise<void> {
  const byReason = new Map<string, number>();
  for (const u of unmirrored) byReason.set(u.reason, (byReason.get(u.reason) ?? 0) + 1);
  await c.cloudwatch.send(new PutMetricDataCommand({
    Namespace: cfg.metricNamespace,
    MetricData: [...byReason].map(([reason, n]) => ({
      MetricName: UNMIRRORED_METRIC,
      Dimensions: [{ Name: 'Fleet', Value: cfg.fleet }, { Name: 'Reason', Value: reason }],
      Value: n,
      Unit: 'Count',
    })),
  }));
  const lines = unmirrored.map((u) => `- ${u.eni}: ${u.reason} (${u.code}: ${u.message})`);
  await c.sns.send(new PublishCommand({
    TopicArn: cfg.topicArn,
    Subject: `mirror-replay: ${instance.InstanceId} (${instance.InstanceType}) is not mirrored`.slice(0, 99),
    Message: [
      `Instance ${instance.InstanceId}, type ${instance.InstanceType}, carries ${cfg.selectTagKey} but ${unmirrored.length} of its network interfaces got no mirror session:`,
      ...lines,
      'unsupported: Traffic Mirroring does not support this instance type as a source (see the Traffic Mirroring guide); replace it with a supported type to mirror it.',
      'quota: at most 3 sessions per source ENI; an ENI target takes 10 or 100 sources. Remove a session or use an NLB/GWLB target.',
    ].join('\n'),
  }));
}

async function cleanUp(instanceId: string, cfg: FleetConfig, c: Clients): Promise<Outcome> {
  const out: Outcome = { instanceId, action: 'cleaned', created: [], existing: [], deleted: [], unmirrored: [] };
  // Sessions are found by their tags, not by the instance: a terminated instance's ENIs may be gone already.
  const pages = paginateDescribeTrafficMirrorSessions({ client: c.ec2 }, { Filters: [{ Name: 'traffic-mirror-target-id', Values: [cfg.targetId] }] });
  const ours: string[] = [];
  for await (const page of pages) {
    for (const s of page.TrafficMirrorSessions ?? []) {
      const tag = (k: string) => s.Tags?.find((t) => t.Key === k)?.Value;
      if (s.TrafficMirrorSessionId && tag(SESSION_TAG) === cfg.fleet && tag(INSTANCE_TAG) === instanceId) ours.push(s.TrafficMirrorSessionId);
    }
  }
  for (const id of ours) {
    try {
      await c.ec2.send(new DeleteTrafficMirrorSessionCommand({ TrafficMirrorSessionId: id }));
      out.deleted.push(id);
    } catch (e) {
      // Already gone (a second delivery, or AWS removed it with the ENI): the goal is met.
      if (errorCode(e) !== 'InvalidTrafficMirrorSessionId.NotFound') throw e;
    }
  }
  return out;
}

function errorCode(e: unknown): string {
  const x = e as { name?: string; Code?: string };
  return x?.Code ?? x?.name ?? '';
}
