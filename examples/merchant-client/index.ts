// Runs the example merchant client from the command line (README.md here):
//   NATS_URL=nats://127.0.0.1:4222 MERCHANT_ID=m1 NATS_PASSWORD=... MANUAL_SKUS=tour-1 \
//   STOCK=tour-1:2027-06-01:50 npx tsx examples/merchant-client/index.ts
// Ctrl-C stops it (the event in hand is finished and acked first).

import { parseStockLines, runMerchantClient, type StockLine } from './client.ts';

function required(name: string): string {
  const value = process.env[name];
  if (!value) {
    console.error(`${name} is required (see examples/merchant-client/README.md)`);
    process.exit(2);
  }
  return value;
}

/** STOCK, or exit 2 saying what it cannot read. */
function stockLines(text: string | undefined): StockLine[] {
  try {
    return parseStockLines(text);
  } catch (error) {
    console.error(`STOCK: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(2);
  }
}

const merchantId = required('MERCHANT_ID');
const client = await runMerchantClient({
  servers: process.env.NATS_URL ?? 'nats://127.0.0.1:4222',
  merchantId,
  user: process.env.NATS_USER ?? merchantId,
  ...(process.env.NATS_PASSWORD ? { pass: process.env.NATS_PASSWORD } : {}),
  manualSkus: (process.env.MANUAL_SKUS ?? '').split(',').filter(Boolean),
  stock: stockLines(process.env.STOCK),
});

for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void client.stop());
await client.done.catch(() => {
  process.exitCode = 1;
});
await client.stop();
