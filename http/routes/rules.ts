// Purchase-rule routes (admin token), API.md "Catalog (admin)" and "Purchase rules":
// - PUT /v1/limit-rules/{ruleId} → 200 the rule as stored (normalised: unknown fields stripped, window
//   times in UTC, `id` = the path's). Idempotent upsert. A body `id` other than the path's → 400; absent
//   is fine. A new rule beyond RULES_MAX (1,000) → 409 invalid_state, nothing changed.
// - DELETE /v1/limit-rules/{ruleId} → 204, also for an id that has no rule (idempotent, like a repeated
//   DELETE: the state asked for holds).
// - GET /v1/limit-rules → 200 `[rule, ...]` sorted by id.
// A change is in force for the next order as soon as the answer is sent (the rule book is in memory).

import type Router from '@koa/router';
import type { StampedeNode } from '../../app/node.ts';
import type { Rule } from '../../engine/rules.ts';
import type { Auth } from '../auth.ts';
import { readJson } from '../body.ts';
import { invalidRequest, invalidState } from '../api-error.ts';
import { parse, ruleBody, ruleParams } from '../validation.ts';

export function ruleRoutes(router: Router, node: StampedeNode, auth: Auth): void {
  router.get('/v1/limit-rules', auth.requireAdmin, async (ctx) => {
    ctx.body = node.rules.list();
  });

  router.put('/v1/limit-rules/:ruleId', auth.requireAdmin, async (ctx) => {
    const { ruleId } = parse(ruleParams, ctx.params, ['params']);
    const { value } = await readJson(ctx);
    const { id, ...b } = parse(ruleBody, value);
    if (id !== undefined && id !== ruleId) {
      throw invalidRequest('invalid request body', [{ path: ['id'], message: `must equal the path's ruleId (${ruleId}) or be absent` }]);
    }
    const rule: Rule = { id: ruleId, ...b };
    const r = await node.rules.put(rule);
    if (!r.ok) throw invalidState(`at most ${r.max} purchase rules; delete one first`);
    ctx.body = r.rule;
  });

  router.delete('/v1/limit-rules/:ruleId', auth.requireAdmin, async (ctx) => {
    const { ruleId } = parse(ruleParams, ctx.params, ['params']);
    await node.rules.delete(ruleId);
    ctx.status = 204;
  });
}
