// The card-key secret must be the one the stored keys were sealed with: keys sealed under another
// cannot be opened (a buyer's GET of a delivered order would fail), and uploads are deduplicated by
// an HMAC under it, so the same keys uploaded again would be stored twice and could be sold twice.
//
// - `keepGeneratedCardKeySecret`: on the embedded default with no STAMPEDE_CARD_KEY_SECRET (never in
//   production), the secret made up for the session is kept in the data folder, next to the keys it
//   seals (`card-key-secret`, mode 0600, synced to disk) and read back by the next start, so
//   `npm start` keeps its card keys across restarts. Taken once the node holds the folder's lock.
//   On MySQL the keys live in a database that other nodes share: a secret kept in one node's folder
//   would differ from its peers', so a generated one stays per session there (and the check below
//   refuses a start that could not open the stored keys). The other generated secrets stay per
//   session (API.md "Running").
// - `checkCardKeySecret`: at start, the oldest and the newest stored keys must open with the
//   configured secret; otherwise the node refuses to start (nothing is served with keys it cannot
//   open or would duplicate).
import { closeSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { CardKeyCipher } from '../persistence/card-key-cipher.ts';
import type { CardKeyStore } from '../persistence/ports.ts';
import type { Config } from './config.ts';

export const CARD_KEY_SECRET_FILE = 'card-key-secret';

/** Where a generated card-key secret came from: `file` (an earlier start), `new` (written now), or none. */
export type KeptSecret = { source: 'file' | 'new'; path: string } | undefined;

/** Replaces a generated card-key secret by the kept one (or keeps the new one); the config is updated in place. */
export function keepGeneratedCardKeySecret(config: Config): KeptSecret {
  if (!config.generatedSecrets.includes('cardKeySecret') || config.mysqlUrl) return undefined;
  const path = join(config.dataDir, CARD_KEY_SECRET_FILE);
  let kept: string | undefined;
  try {
    kept = readFileSync(path, 'utf8').trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`cannot read ${path}: ${(error as Error).message}`);
  }
  if (kept !== undefined) {
    if (kept.length < 32) throw new Error(`${path} holds no card-key secret (at least 32 characters); remove it or set STAMPEDE_CARD_KEY_SECRET`);
    config.secrets.cardKeySecret = kept;
    config.generatedSecrets = config.generatedSecrets.filter((name) => name !== 'cardKeySecret');
    return { source: 'file', path };
  }
  mkdirSync(config.dataDir, { recursive: true });
  // On disk before any key is sealed with it: the file, then the folder's entry for it. Written whole
  // under a temporary name and then linked into place (which, unlike a rename, refuses to replace a
  // file): a write cut short (a full disk, a kill before the sync) leaves at most a temporary file,
  // never a `card-key-secret` without a secret that would refuse every later start.
  const tmp = `${path}.tmp`;
  rmSync(tmp, { force: true });
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, `${config.secrets.cardKeySecret}\n`);
    fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw error;
  }
  closeSync(fd);
  linkSync(tmp, path);
  rmSync(tmp, { force: true });
  const dir = openSync(config.dataDir, 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
  config.generatedSecrets = config.generatedSecrets.filter((name) => name !== 'cardKeySecret');
  return { source: 'new', path };
}

export class CardKeySecretMismatchError extends Error {
  override name = 'CardKeySecretMismatchError';
}

/** Rejects with CardKeySecretMismatchError when a stored key does not open with `cipher`'s secret. */
export async function checkCardKeySecret(store: CardKeyStore, cipher: CardKeyCipher): Promise<void> {
  for (const key of await store.oldestAndNewest()) {
    try {
      cipher.decrypt(key.skuId, key.ciphertext);
    } catch {
      throw new CardKeySecretMismatchError(
        'STAMPEDE_CARD_KEY_SECRET does not open the card keys stored in this database: start with the secret they were uploaded under ' +
          '(keys sealed under another cannot be shown to their buyers, and uploaded again they would be stored twice)',
      );
    }
  }
}
