// Both stacks in one CDK app, with cdk-nag. `bin/app.ts` runs this; the tests call it directly.
import { App, type AppProps } from 'aws-cdk-lib';
import { acknowledgeFindings, addNag } from './nag.js';
import { MirrorScaleOutStack } from './scale-out-stack.js';
import { MirrorTopologyStack } from './topology-stack.js';

export function buildApp(props: AppProps = {}) {
  const app = new App(props);
  const keyPairName = app.node.tryGetContext('keyPairName') as string | undefined;
  const servicePort = Number(app.node.tryGetContext('servicePort') ?? 80);
  const topology = new MirrorTopologyStack(app, 'MirrorReplayTopology', { keyPairName, servicePort });
  const scaleOut = new MirrorScaleOutStack(app, 'MirrorReplayScaleOut', { keyPairName, servicePort });
  acknowledgeFindings(topology);
  acknowledgeFindings(scaleOut);
  const nag = addNag(app);
  return { app, topology, scaleOut, nag };
}
