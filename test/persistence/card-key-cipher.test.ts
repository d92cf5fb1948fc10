// Proves the card-key cipher (AES-256-GCM, the SKU bound as associated data) opens only what it sealed:
// a round trip works, and a value with its tag cut short, another IV length, a changed byte or another
// SKU's id is refused (Node's GCM alone would accept a tag of 4 bytes: a 2^-32 forgery bound).
import { describe, expect, it } from 'vitest';
import { CardKeyCipher } from '../../persistence/card-key-cipher.ts';

const cipher = new CardKeyCipher('a-card-key-secret-for-this-test-0123456789');

describe('the card-key cipher', () => {
  it('opens what it sealed, for the SKU it sealed it for', () => {
    const sealed = cipher.encrypt('sku-1', 'ABCD-1234-EFGH');
    expect(sealed).toMatch(/^v1\.[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(cipher.decrypt('sku-1', sealed)).toBe('ABCD-1234-EFGH');
    expect(() => cipher.decrypt('sku-2', sealed)).toThrow();
  });

  it('refuses a tag cut short, an IV of another length, and a changed ciphertext', () => {
    const [v, iv, tag, ct] = cipher.encrypt('sku-1', 'ABCD-1234-EFGH').split('.') as [string, string, string, string];
    const tagBytes = Buffer.from(tag, 'base64url');
    for (const n of [12, 8, 4]) {
      expect(() => cipher.decrypt('sku-1', [v, iv, tagBytes.subarray(0, n).toString('base64url'), ct].join('.')), `tag of ${n} bytes`).toThrow();
    }
    expect(() => cipher.decrypt('sku-1', [v, Buffer.alloc(1).toString('base64url'), tag, ct].join('.'))).toThrow();
    const changed = Buffer.from(ct, 'base64url');
    changed[0]! ^= 1;
    expect(() => cipher.decrypt('sku-1', [v, iv, tag, changed.toString('base64url')].join('.'))).toThrow();
  });
});
