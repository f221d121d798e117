// The fleet construct's Lambda handler against the AWS SDK's own mocking library
// (aws-sdk-client-mock): EC2 is a small in-memory fake behind the mocked client, so the tests
// assert what ends up existing, not which calls were made.
import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CreateTrafficMirrorSessionCommand, DeleteTrafficMirrorSessionCommand, DescribeInstancesCommand, DescribeTrafficMirrorSessionsCommand,
  EC2Client, EC2ServiceException, type CreateTrafficMirrorSessionCommandInput, type DescribeTrafficMirrorSessionsCommandInput, type Instance,
  type TrafficMirrorSession,
} from '@aws-sdk/client-ec2';
import { CloudWatchClient, PutMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import {
  configFromEnv, handleEvent, handler, INSTANCE_TAG, SESSION_TAG, UNMIRRORED_METRIC, type Clients, type FleetConfig, type StateChangeEvent,
} from '../../deploy/aws/lambda/fleet-sessions.mjs';
import { FLEET_METRIC_NAMESPACE, FLEET_SESSION_TAG } from '../../deploy/aws/lib/contract.js';

const cfg: FleetConfig = {
  targetId: 'tmt-0123456789abcdef0',
  filterId: 'tmf-0123456789abcdef0',
  vni: 4242,
  sessionNumber: 1,
  selectTagKey: 'mirror-replay:mirror-source',
  selectTagValue: 'MirrorReplayScaleOut',
  fleet: 'MirrorReplayScaleOut',
  topicArn: 'arn:aws:sns:eu-west-1:111122223333:events',
  metricNamespace: FLEET_METRIC_NAMESPACE,
};

const ec2 = mockClient(EC2Client);
const cloudwatch = mockClient(CloudWatchClient);
const sns = mockClient(SNSClient);
const clients = (): Clients => ({ ec2: new EC2Client({ region: 'eu-west-1' }), cloudwatch: new CloudWatchClient({ region: 'eu-west-1' }), sns: new SNSClient({ region: 'eu-west-1' }) });

function ec2Error(name: string, message: string): EC2ServiceException {
  return new EC2ServiceException({ name, message, $fault: 'client', $metadata: { httpStatusCode: 400 } });
}

/** EC2 as far as the handler sees it: instances, sessions (one per page, to exercise pagination). */
class FakeEc2 {
  instances = new Map<string, Instance>();
  sessions: TrafficMirrorSession[] = [];
  /** CreateTrafficMirrorSession on these ENIs fails with this error code. */
  refuse = new Map<string, string>();
  private tokens = new Map<string, string>();
  private next = 1;

  install(): void {
    ec2.on(DescribeInstancesCommand).callsFake((input: { InstanceIds?: string[] }) => ({
      Reservations: [{ Instances: (input.InstanceIds ?? []).flatMap((id) => (this.instances.has(id) ? [this.instances.get(id)!] : [])) }],
    }));
    ec2.on(DescribeTrafficMirrorSessionsCommand).callsFake((input: DescribeTrafficMirrorSessionsCommandInput) => this.describe(input));
    ec2.on(CreateTrafficMirrorSessionCommand).callsFake((input: CreateTrafficMirrorSessionCommandInput) => this.create(input));
    ec2.on(DeleteTrafficMirrorSessionCommand).callsFake((input: { TrafficMirrorSessionId: string }) => {
      const i = this.sessions.findIndex((s) => s.TrafficMirrorSessionId === input.TrafficMirrorSessionId);
      if (i < 0) throw ec2Error('InvalidTrafficMirrorSessionId.NotFound', `The traffic mirror session '${input.TrafficMirrorSessionId}' does not exist.`);
      this.sessions.splice(i, 1);
      return { TrafficMirrorSessionId: input.TrafficMirrorSessionId };
    });
  }

  private describe(input: DescribeTrafficMirrorSessionsCommandInput) {
    const field: Record<string, keyof TrafficMirrorSession> = { 'network-interface-id': 'NetworkInterfaceId', 'traffic-mirror-target-id': 'TrafficMirrorTargetId' };
    const hits = this.sessions.filter((s) => (input.Filters ?? []).every((f) => f.Values!.includes(String(s[field[f.Name!]]))));
    const at = Number(input.NextToken ?? 0);
    return { TrafficMirrorSessions: hits.slice(at, at + 1), NextToken: at + 1 < hits.length ? String(at + 1) : undefined };
  }

  private create(input: CreateTrafficMirrorSessionCommandInput) {
    const refused = this.refuse.get(input.NetworkInterfaceId!);
    if (refused) throw ec2Error(refused, 'The network interface is not supported for Traffic Mirroring.');
    // EC2's idempotency: the same client token returns the session it made the first time.
    const known = input.ClientToken ? this.tokens.get(input.ClientToken) : undefined;
    if (known) return { TrafficMirrorSession: this.sessions.find((s) => s.TrafficMirrorSessionId === known) };
    const s: TrafficMirrorSession = {
      TrafficMirrorSessionId: `tms-${String(this.next++).padStart(17, '0')}`,
      NetworkInterfaceId: input.NetworkInterfaceId,
      TrafficMirrorTargetId: input.TrafficMirrorTargetId,
      TrafficMirrorFilterId: input.TrafficMirrorFilterId,
      SessionNumber: input.SessionNumber,
      VirtualNetworkId: input.VirtualNetworkId,
      Tags: input.TagSpecifications?.[0]?.Tags,
    };
    this.sessions.push(s);
    if (input.ClientToken) this.tokens.set(input.ClientToken, s.TrafficMirrorSessionId!);
    return { TrafficMirrorSession: s, ClientToken: input.ClientToken };
  }
}

function instance(id: string, type: string, enis: string[], tags: Record<string, string>): Instance {
  return {
    InstanceId: id,
    InstanceType: type as Instance['InstanceType'],
    NetworkInterfaces: enis.map((e, i) => ({ NetworkInterfaceId: e, Attachment: { DeviceIndex: i } })),
    Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
  };
}

const event = (id: string, instanceId: string, state: string): StateChangeEvent => ({
  id, 'detail-type': 'EC2 Instance State-change Notification', detail: { 'instance-id': instanceId, state },
});

let fake: FakeEc2;
const production = { [cfg.selectTagKey]: cfg.selectTagValue };

beforeEach(() => {
  ec2.reset();
  cloudwatch.reset();
  sns.reset();
  fake = new FakeEc2();
  fake.install();
  cloudwatch.on(PutMetricDataCommand).resolves({});
  sns.on(PublishCommand).resolves({ MessageId: 'm-1' });
});
afterEach(() => ec2.reset());

describe('fleet sessions: an instance starts', () => {
  test('every ENI of a tagged instance gets one session with the stack\'s filter, target and VNI, tagged for clean-up', async () => {
    fake.instances.set('i-a', instance('i-a', 't3.small', ['eni-1', 'eni-2'], production));
    const out = await handleEvent(event('ev-1', 'i-a', 'running'), cfg, clients());
    assert.equal(out.action, 'mirrored');
    assert.equal(out.created.length, 2);
    assert.deepEqual(fake.sessions.map((s) => s.NetworkInterfaceId).sort(), ['eni-1', 'eni-2']);
    for (const s of fake.sessions) {
      assert.equal(s.TrafficMirrorTargetId, cfg.targetId);
      assert.equal(s.TrafficMirrorFilterId, cfg.filterId);
      assert.equal(s.VirtualNetworkId, 4242);
      assert.equal(s.SessionNumber, 1);
      assert.deepEqual(s.Tags, [{ Key: SESSION_TAG, Value: cfg.fleet }, { Key: INSTANCE_TAG, Value: 'i-a' }]);
    }
    assert.equal(cloudwatch.commandCalls(PutMetricDataCommand).length, 0, 'nothing to report');
    assert.equal(sns.commandCalls(PublishCommand).length, 0);
  });

  test('a re-delivered or repeated event makes no second session, also when the first is on a later page', async () => {
    fake.instances.set('i-a', instance('i-a', 't3.small', ['eni-1'], production));
    // Another tool's session on the same ENI (another target) comes first: it is not ours.
    fake.sessions.push({ TrafficMirrorSessionId: 'tms-other', NetworkInterfaceId: 'eni-1', TrafficMirrorTargetId: 'tmt-someone-else' });
    const first = await handleEvent(event('ev-1', 'i-a', 'running'), cfg, clients());
    const again = await handleEvent(event('ev-1', 'i-a', 'running'), cfg, clients());
    const later = await handleEvent(event('ev-2', 'i-a', 'running'), cfg, clients());
    assert.equal(first.created.length, 1);
    assert.deepEqual(again.created, []);
    assert.deepEqual(again.existing, first.created);
    assert.deepEqual(later.existing, first.created);
    assert.equal(fake.sessions.filter((s) => s.TrafficMirrorTargetId === cfg.targetId).length, 1);
    // The existing session was found on page 2: the handler followed NextToken.
    assert.ok(ec2.commandCalls(DescribeTrafficMirrorSessionsCommand).some((c) => c.args[0].input.NextToken === '1'));
  });

  test('two deliveries racing past the check still make one session: the client token is per event and ENI', async () => {
    fake.instances.set('i-a', instance('i-a', 't3.small', ['eni-1'], production));
    const [a, b] = await Promise.all([
      handleEvent(event('ev-1', 'i-a', 'running'), cfg, clients()),
      handleEvent(event('ev-1', 'i-a', 'running'), cfg, clients()),
    ]);
    assert.equal(fake.sessions.length, 1);
    assert.deepEqual([...a.created, ...a.existing], [...b.created, ...b.existing]);
    const tokens = ec2.commandCalls(CreateTrafficMirrorSessionCommand).map((c) => c.args[0].input.ClientToken);
    assert.ok(tokens.length >= 1 && tokens.every((t) => t === tokens[0] && /^[0-9a-f]{64}$/.test(t!)));
  });

  test('an instance without the tag, or with another value, is left alone', async () => {
    fake.instances.set('i-b', instance('i-b', 't3.small', ['eni-9'], { Name: 'bastion' }));
    fake.instances.set('i-c', instance('i-c', 't3.small', ['eni-8'], { [cfg.selectTagKey]: 'OtherStack' }));
    for (const id of ['i-b', 'i-c']) assert.equal((await handleEvent(event(`ev-${id}`, id, 'running'), cfg, clients())).action, 'ignored');
    assert.equal(fake.sessions.length, 0);
    assert.equal(ec2.commandCalls(CreateTrafficMirrorSessionCommand).length, 0);
  });

  test('an Auto Scaling group selector (any value of a tag) matches on the key\'s value', async () => {
    const asg = { ...cfg, selectTagKey: 'aws:autoscaling:groupName', selectTagValue: 'web' };
    fake.instances.set('i-d', instance('i-d', 'm5.large', ['eni-4'], { 'aws:autoscaling:groupName': 'web' }));
    fake.instances.set('i-e', instance('i-e', 'm5.large', ['eni-5'], { 'aws:autoscaling:groupName': 'batch' }));
    assert.equal((await handleEvent(event('ev-d', 'i-d', 'running'), asg, clients())).created.length, 1);
    assert.equal((await handleEvent(event('ev-e', 'i-e', 'running'), asg, clients())).action, 'ignored');
    const anyValue = { ...cfg, selectTagValue: '' };
    fake.instances.set('i-f', instance('i-f', 'm5.large', ['eni-6'], { [cfg.selectTagKey]: 'whatever' }));
    assert.equal((await handleEvent(event('ev-f', 'i-f', 'running'), anyValue, clients())).created.length, 1);
  });

  test('an instance type AWS cannot mirror is reported: a metric and a message on the topic, and its other ENIs still mirrored', async () => {
    fake.instances.set('i-m7', instance('i-m7', 'm7i.large', ['eni-7a', 'eni-7b'], production));
    fake.refuse.set('eni-7a', 'NetworkInterfaceNotSupported');
    const out = await handleEvent(event('ev-7', 'i-m7', 'running'), cfg, clients());
    assert.deepEqual(out.unmirrored.map((u) => [u.eni, u.reason, u.code]), [['eni-7a', 'unsupported', 'NetworkInterfaceNotSupported']]);
    assert.equal(out.created.length, 1);
    const [metric] = cloudwatch.commandCalls(PutMetricDataCommand).map((c) => c.args[0].input);
    assert.equal(metric.Namespace, 'MirrorReplay');
    assert.deepEqual(metric.MetricData, [{
      MetricName: UNMIRRORED_METRIC, Value: 1, Unit: 'Count',
      Dimensions: [{ Name: 'Fleet', Value: cfg.fleet }, { Name: 'Reason', Value: 'unsupported' }],
    }]);
    const [msg] = sns.commandCalls(PublishCommand).map((c) => c.args[0].input);
    assert.equal(msg.TopicArn, cfg.topicArn);
    assert.match(msg.Subject!, /i-m7 \(m7i\.large\) is not mirrored/);
    assert.ok(msg.Subject!.length < 100, 'SNS subjects are under 100 characters');
    assert.match(msg.Message!, /eni-7a: unsupported \(NetworkInterfaceNotSupported/);
  });

  test('a quota refusal is reported too, under its own reason', async () => {
    fake.instances.set('i-q', instance('i-q', 't3.small', ['eni-q'], production));
    fake.refuse.set('eni-q', 'TrafficMirrorSessionsPerInterfaceLimitExceeded');
    const out = await handleEvent(event('ev-q', 'i-q', 'running'), cfg, clients());
    assert.deepEqual(out.unmirrored.map((u) => u.reason), ['quota']);
    assert.equal(cloudwatch.commandCalls(PutMetricDataCommand)[0].args[0].input.MetricData![0].Dimensions![1].Value, 'quota');
    assert.equal(sns.commandCalls(PublishCommand).length, 1);
  });

  test('any other error is thrown, so Lambda retries and then hands the event to the failure destination', async () => {
    fake.instances.set('i-t', instance('i-t', 't3.small', ['eni-t'], production));
    fake.refuse.set('eni-t', 'RequestLimitExceeded');
    await assert.rejects(handleEvent(event('ev-t', 'i-t', 'running'), cfg, clients()), (e: Error) => e.name === 'RequestLimitExceeded');
    assert.equal(sns.commandCalls(PublishCommand).length, 0, 'not reported as unmirrorable');
    // An instance EC2 does not know yet (eventual consistency) is retried as well, not skipped.
    await assert.rejects(handleEvent(event('ev-u', 'i-unknown', 'running'), cfg, clients()), /does not know i-unknown/);
  });
});

describe('fleet sessions: an instance terminates', () => {
  test('its sessions, and only its, are deleted across pages; a second delivery is a no-op', async () => {
    fake.instances.set('i-a', instance('i-a', 't3.small', ['eni-1', 'eni-2'], production));
    fake.instances.set('i-b', instance('i-b', 't3.small', ['eni-3'], production));
    await handleEvent(event('ev-a', 'i-a', 'running'), cfg, clients());
    await handleEvent(event('ev-b', 'i-b', 'running'), cfg, clients());
    // Same target, same instance tag, another stack's fleet: not ours to delete.
    fake.sessions.push({ TrafficMirrorSessionId: 'tms-foreign', NetworkInterfaceId: 'eni-1', TrafficMirrorTargetId: cfg.targetId, Tags: [{ Key: SESSION_TAG, Value: 'OtherStack' }, { Key: INSTANCE_TAG, Value: 'i-a' }] });
    const out = await handleEvent(event('ev-a2', 'i-a', 'terminated'), cfg, clients());
    assert.equal(out.action, 'cleaned');
    assert.equal(out.deleted.length, 2);
    assert.deepEqual(fake.sessions.map((s) => s.TrafficMirrorSessionId).sort(), ['tms-00000000000000003', 'tms-foreign']);
    const again = await handleEvent(event('ev-a2', 'i-a', 'terminated'), cfg, clients());
    assert.deepEqual(again.deleted, []);
  });

  test('a session that vanished between listing and deleting counts as deleted work done, not an error', async () => {
    fake.instances.set('i-a', instance('i-a', 't3.small', ['eni-1'], production));
    await handleEvent(event('ev-a', 'i-a', 'running'), cfg, clients());
    const id = fake.sessions[0].TrafficMirrorSessionId!;
    ec2.on(DeleteTrafficMirrorSessionCommand).rejects(ec2Error('InvalidTrafficMirrorSessionId.NotFound', `'${id}' does not exist`));
    const out = await handleEvent(event('ev-a2', 'i-a', 'terminated'), cfg, clients());
    assert.deepEqual(out.deleted, []);
    ec2.on(DeleteTrafficMirrorSessionCommand).rejects(ec2Error('UnauthorizedOperation', 'denied'));
    await assert.rejects(handleEvent(event('ev-a3', 'i-a', 'terminated'), cfg, clients()), (e: Error) => e.name === 'UnauthorizedOperation');
  });

  test('other states (pending, stopping) change nothing', async () => {
    const out = await handleEvent(event('ev-s', 'i-a', 'stopping'), cfg, clients());
    assert.equal(out.action, 'other-state');
    assert.equal(ec2.calls().length, 0);
  });
});

describe('fleet sessions: configuration', () => {
  const env = {
    TARGET_ID: 'tmt-1', FILTER_ID: 'tmf-1', VNI: '7', SESSION_NUMBER: '1', SELECT_TAG_KEY: 'k', FLEET: 'S', TOPIC_ARN: 'arn:t', METRIC_NAMESPACE: 'MirrorReplay',
  };

  test('the environment the construct sets is read and checked', () => {
    assert.deepEqual(configFromEnv(env), { targetId: 'tmt-1', filterId: 'tmf-1', vni: 7, sessionNumber: 1, selectTagKey: 'k', selectTagValue: '', fleet: 'S', topicArn: 'arn:t', metricNamespace: 'MirrorReplay' });
    assert.throws(() => configFromEnv({ ...env, TARGET_ID: '' }), /TARGET_ID is not set/);
    assert.throws(() => configFromEnv({ ...env, VNI: '16777216' }), /VNI must be an integer 0-16777215/);
    assert.throws(() => configFromEnv({ ...env, SESSION_NUMBER: '0' }), /SESSION_NUMBER/);
  });

  test('the handler\'s tag is the contract\'s, and the exported handler reads its environment', async () => {
    assert.equal(SESSION_TAG, FLEET_SESSION_TAG);
    const saved = { ...process.env };
    Object.assign(process.env, env, { AWS_REGION: 'eu-west-1', AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: 'example' });
    const log = console.log;
    console.log = () => undefined;
    try {
      const out = await handler(event('ev-h', 'i-h', 'pending'));
      assert.equal(out.action, 'other-state');
    } finally {
      console.log = log;
      process.env = saved;
    }
  });
});
