// The few lines an agent builder adds: the root README's "For agent builders: TypeScript",
// type-checked against @x402/core's and @x402/fetch's own declarations by `npm run typecheck`.
import { x402Client } from "@x402/core/client";
import { wrapFetchWithPayment } from "@x402/fetch";
import { Aep2Payer, decodePaymentResponse, loadLaneFile } from "@aep2/payer";

export async function main(): Promise<void> {
  const payer = new Aep2Payer({ key: process.env.AEP2_PAYER_KEY!, maxAmount: "5000" });
  const client = payer.register(new x402Client().setSpendControls({ allowedAssets: true }));
  const pay = payer.fetchWithPayment(wrapFetchWithPayment, client);

  const res = await pay("http://127.0.0.1:8080/paid/intent"); // Intent Mode: ref = this request's hash
  const receipt = decodePaymentResponse(res); // PAYMENT-RESPONSE: extra.mandateId, extra.receipt (the SP's)
  console.log(res.status, receipt?.extra.mandateId, receipt?.extra.receipt);

  // The scheme is an x402 SchemeNetworkClient: it registers with any x402Client.
  new x402Client().register("eip155:84532", payer.scheme);
}

// Under a spending lane (README "Pay under a spending lane"): the agent's key and its lane file.
export async function underLane(laneFileText: string): Promise<string | undefined> {
  const lane = loadLaneFile(laneFileText);
  const payer = new Aep2Payer({ key: process.env.AEP2_AGENT_KEY!, lane });
  const pay = payer.fetchWithPayment(wrapFetchWithPayment, payer.register(new x402Client().setSpendControls({ allowedAssets: true })));
  const { receipt } = payer.checkPaymentResponse(await pay("http://127.0.0.1:8080/paid/intent"));
  return receipt?.lane?.remaining; // what the SP says remains under the lane
}

declare const process: { env: Record<string, string | undefined> };
