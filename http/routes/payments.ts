// The payment provider's callback (API.md "Payments"): the signature is checked over the raw bytes
// before anything else is looked at, then the body is validated and the order actor applies the
// payment. The 200 leaves once the order's new state is durable; a repeated or reordered callback
// gets the order's status again and changes nothing.

import type Router from '@koa/router';
import type { StampedeNode } from '../../app/node.ts';
import { unauthorized } from '../api-error.ts';
import type { Auth } from '../auth.ts';
import { readSignedJson } from '../body.ts';
import { failureToApiError } from '../engine-errors.ts';
import { parse, paymentCallbackBody } from '../validation.ts';

export function paymentRoutes(router: Router, node: StampedeNode, auth: Auth): void {
  router.post('/v1/payments/callback', async (ctx) => {
    const { value } = await readSignedJson(ctx, (raw) => {
      if (!auth.verifyPaymentSignature(raw, ctx.get('Stampede-Signature') || undefined)) {
        throw unauthorized('missing, wrong or stale Stampede-Signature');
      }
    });
    const body = parse(paymentCallbackBody, value);
    const started = performance.now();
    const r = await node.orders.pay(body.orderId, { paymentId: body.paymentId, amountCents: body.amountCents, status: body.status });
    node.metrics.paymentCallbackMs.observe(performance.now() - started);
    if (!r.ok) throw failureToApiError(r);
    ctx.body = r.value;
  });
}
