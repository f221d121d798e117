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

export function acknowledgeFindings(stack: Stack): void {
  for (const a of ACKNOWLEDGED) Validations.of(stack).acknowledge(a);
}

/** Run the AwsSolutions pack when the app synthesizes: an unacknowledged finding fails `cdk synth`. */
export function addNag(app: App): AwsSolutionsChecks {
  const pack = new AwsSolutionsChecks(app, { verbose: true });
  Validations.of(app).addPlugins(pack);
  return pack;
}
