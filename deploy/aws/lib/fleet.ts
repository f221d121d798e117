// Sessions that follow the fleet: an EventBridge rule on EC2 instance state changes runs a Lambda
// (lambda/fleet-sessions.mts) that gives every ENI of a selected instance a mirror session with the
// stack's filter, target and VNI when it starts, and deletes those sessions when it terminates.
// ENIs that cannot be mirrored are reported: a CloudWatch metric and a message on the SNS topic.
import { dirname, join } from 'node:path';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Construct } from 'constructs';
import { Duration, RemovalPolicy, Stack, Token, Validations } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as destinations from 'aws-cdk-lib/aws-lambda-destinations';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { FLEET_METRIC_NAMESPACE, FLEET_SESSION_TAG } from './contract.js';
import { FLEET_ACKNOWLEDGED } from './nag.js';

/** Which instances to mirror: those with a tag (any value if `value` is omitted), or one Auto Scaling group's. */
export type FleetSelector = { readonly tag: { readonly key: string; readonly value?: string } } | { readonly autoScalingGroupName: string };

export interface FleetSessionsProps {
  readonly selector: FleetSelector;
  readonly filterId: string;
  readonly targetId: string;
  /** The session VNI (may be the stack's Vni parameter). */
  readonly vni: number;
  /** Priority among the ENI's sessions (1-32766); default 1. */
  readonly sessionNumber?: number;
  /** Where unmirrorable instances and failed events are reported. */
  readonly topic: sns.ITopic;
}

/** The compiled handler's folder: dist/deploy/aws/lambda, next to this file's dist/deploy/aws/lib. */
export function handlerDir(): string {
  const dir = join(dirname(fileURLToPath(import.meta.url)), '..', 'lambda');
  if (!existsSync(join(dir, 'fleet-sessions.mjs'))) throw new Error(`${dir}/fleet-sessions.mjs not found: run tsc (npm run build) first`);
  return dir;
}

export class FleetSessions extends Construct {
  readonly fn: lambda.Function;
  readonly rule: events.Rule;
  readonly role: iam.Role;

  constructor(scope: Construct, id: string, props: FleetSessionsProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const fleet = stack.stackName;
    const select = 'tag' in props.selector
      ? { key: props.selector.tag.key, value: props.selector.tag.value ?? '' }
      : { key: 'aws:autoscaling:groupName', value: props.selector.autoScalingGroupName };
    if (!Token.isUnresolved(select.key) && select.key === '') throw new Error('FleetSessions: the selecting tag key is empty');

    const logGroup = new logs.LogGroup(this, 'Logs', { retention: logs.RetentionDays.ONE_MONTH, removalPolicy: RemovalPolicy.DESTROY });
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: 'mirror-replay fleet sessions: create and delete this stack\'s mirror sessions, report unmirrorable instances',
    });
    this.role.addToPolicy(new iam.PolicyStatement({ actions: ['logs:CreateLogStream', 'logs:PutLogEvents'], resources: [logGroup.logGroupArn] }));
    addSessionPermissions(this.role, stack, fleet, props);
    for (const a of FLEET_ACKNOWLEDGED) Validations.of(this.role).acknowledge(a);

    this.fn = new lambda.Function(this, 'Function', {
      description: 'mirror-replay: a mirror session for every ENI of a selected instance while it runs',
      // The newest Node.js runtime (cdk-nag L1). Lambda has run nodejs24.x since November 2025;
      // nodejs22.x follows Node 22 to its end of life in April 2027. The handler is async and ESM.
      runtime: lambda.Runtime.NODEJS_24_X,
      handler: 'fleet-sessions.handler',
      // Only the compiled handler: the runtime brings the AWS SDK v3, so nothing is bundled.
      code: lambda.Code.fromAsset(handlerDir(), { exclude: ['*', '!fleet-sessions.mjs'] }),
      role: this.role,
      logGroup,
      timeout: Duration.seconds(60),
      memorySize: 256,
      environment: {
        TARGET_ID: props.targetId,
        FILTER_ID: props.filterId,
        VNI: Token.asString(props.vni),
        SESSION_NUMBER: String(props.sessionNumber ?? 1),
        SELECT_TAG_KEY: select.key,
        SELECT_TAG_VALUE: select.value,
        FLEET: fleet,
        TOPIC_ARN: props.topic.topicArn,
        METRIC_NAMESPACE: FLEET_METRIC_NAMESPACE,
      },
    });
    props.topic.grantPublish(this.role);
    // EventBridge invokes asynchronously: two retries, then the event goes to the topic. A session
    // that could not be made or deleted is never dropped unheard.
    this.fn.configureAsyncInvoke({ retryAttempts: 2, maxEventAge: Duration.hours(1), onFailure: new destinations.SnsDestination(props.topic) });

    this.rule = new events.Rule(this, 'InstanceStateChange', {
      description: 'mirror-replay: instances starting and terminating, for the fleet sessions',
      eventPattern: {
        source: ['aws.ec2'],
        detailType: ['EC2 Instance State-change Notification'],
        detail: { state: ['running', 'terminated'] },
      },
      targets: [new targets.LambdaFunction(this.fn, { retryAttempts: 8, maxEventAge: Duration.hours(2) })],
    });
  }
}

/**
 * Least privilege: sessions may be created only with this stack's target and filter and with the
 * fleet tag, and deleted only when they carry it. Describe calls have no resource-level permissions.
 */
function addSessionPermissions(role: iam.Role, stack: Stack, fleet: string, props: FleetSessionsProps): void {
  const arn = (resource: string, name: string) => stack.formatArn({ service: 'ec2', resource, resourceName: name });
  role.addToPolicy(new iam.PolicyStatement({
    sid: 'Describe',
    actions: ['ec2:DescribeInstances', 'ec2:DescribeTrafficMirrorSessions'],
    resources: ['*'],
  }));
  role.addToPolicy(new iam.PolicyStatement({
    sid: 'CreateTaggedSession',
    actions: ['ec2:CreateTrafficMirrorSession'],
    resources: [arn('traffic-mirror-session', '*')],
    conditions: { StringEquals: { [`aws:RequestTag/${FLEET_SESSION_TAG}`]: fleet } },
  }));
  role.addToPolicy(new iam.PolicyStatement({
    sid: 'CreateSessionFromAnyEniToOurTarget',
    actions: ['ec2:CreateTrafficMirrorSession'],
    resources: [arn('network-interface', '*'), arn('traffic-mirror-target', props.targetId), arn('traffic-mirror-filter', props.filterId)],
  }));
  role.addToPolicy(new iam.PolicyStatement({
    sid: 'TagOnCreate',
    actions: ['ec2:CreateTags'],
    resources: [arn('traffic-mirror-session', '*')],
    conditions: { StringEquals: { 'ec2:CreateAction': 'CreateTrafficMirrorSession' } },
  }));
  role.addToPolicy(new iam.PolicyStatement({
    sid: 'DeleteOwnSessions',
    actions: ['ec2:DeleteTrafficMirrorSession'],
    resources: [arn('traffic-mirror-session', '*')],
    conditions: { StringEquals: { [`aws:ResourceTag/${FLEET_SESSION_TAG}`]: fleet } },
  }));
  role.addToPolicy(new iam.PolicyStatement({
    sid: 'UnmirroredMetric',
    actions: ['cloudwatch:PutMetricData'],
    resources: ['*'],
    conditions: { StringEquals: { 'cloudwatch:namespace': FLEET_METRIC_NAMESPACE } },
  }));
}
