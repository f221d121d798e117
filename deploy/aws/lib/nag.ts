// cdk-nag (AwsSolutions pack) on both stacks; each finding is fixed in the stacks or acknowledged
// here, once, with the reason.
import { Validations, type App, type Stack } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';

/** The findings we accept, and why. Everything else must be fixed in the stacks. */
export const ACKNOWLEDGED: ReadonlyArray<{ id: string; reason: string }> = [
  {
    id: 'AwsSolutions-EC23',
    reason: 'The production stand-in serves the mirrored service port to the internet, as in the blog: that traffic is what gets mirrored.',
  },
  {
    id: 'AwsSolutions-EC29',
    reason: 'The source, adapter and target stand-ins are disposable test instances that cdk destroy must remove; the scale-out adapters are in an Auto Scaling group.',
  },
  {
    id: 'AwsSolutions-VPC3',
    reason: 'The blog topology, and the issue, ask for NACLs; each entry has its reason in aclPlan (network.ts) and a test asserts the exact set.',
  },
  {
    id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore]',
    reason: 'AmazonSSMManagedInstanceCore is the AWS-maintained minimum for Session Manager access to the instances.',
  },
];

/**
 * The fleet construct's role (lib/fleet.ts), acknowledged on that construct only. Each wildcard is
 * a resource that does not exist yet or an action without resource-level permissions.
 */
export const FLEET_ACKNOWLEDGED: ReadonlyArray<{ id: string; reason: string }> = [
  {
    id: 'AwsSolutions-IAM5[Resource::*]',
    reason: 'ec2:DescribeInstances and ec2:DescribeTrafficMirrorSessions have no resource-level permissions; cloudwatch:PutMetricData is limited by the cloudwatch:namespace condition instead.',
  },
  {
    id: 'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:traffic-mirror-session/*]',
    reason: 'Session ids are not known before creation: creating requires the request tag mirror-replay:fleet=<stack>, tagging only on creation, and deleting only sessions that carry that tag.',
  },
  {
    id: 'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:network-interface/*]',
    reason: 'The sources are the ENIs of instances that start later, unknown at deploy time; the same statement pins the target and the filter to this stack\'s.',
  },
];

export function acknowledgeFindings(stack: Stack): void {
  for (const a of ACKNOWLEDGED) Validations.of(stack).acknowledge(a);
}

/** Run the AwsSolutions pack when the app synthesizes: an unacknowledged finding fails `cdk synth`. */
export function addNag(app: App): AwsSolutionsChecks {
  const pack = new AwsSolutionsChecks(app, { verbose: true });
  Validations.of(app).addPlugins(pack);
  return pack;
}
