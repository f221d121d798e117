/**
 * The connection a captured request came on, as far as replay needs it: the loop guard (the
 * server), sampling by client address, X-Forwarded-For/-Port. Reassembly's FlowInfo has this
 * shape, so the pipeline hands it over as it is; replay does not depend on reassembly.
 */
export interface RequestFlow {
  clientAddr: string;
  clientPort: number;
  serverAddr: string;
  serverPort: number;
}
