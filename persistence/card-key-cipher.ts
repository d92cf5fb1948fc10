// Card keys are secrets: stored encrypted at rest with AES-256-GCM under a key derived from
// STAMPEDE_CARD_KEY_SECRET, deduplicated per SKU by an HMAC (so equal keys are found without
// decrypting, and the hash reveals nothing without the secret). Never logged, never in events.

import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';

const IV_BYTES = 12;
const TAG_BYTES = 16;

export class CardKeyCipher {
  private readonly encKey: Buffer;
  private readonly macKey: Buffer;

  constructor(secret: string) {
    this.encKey = Buffer.from(hkdfSync('sha256', secret, 'stampede', 'card-key-encryption', 32));
    this.macKey = Buffer.from(hkdfSync('sha256', secret, 'stampede', 'card-key-dedupe', 32));
  }

  /** `v1.<iv>.<tag>.<ciphertext>`, base64url parts. The SKU id is bound as associated data. */
  encrypt(skuId: string, key: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.encKey, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.from(skuId));
    const ct = Buffer.concat([cipher.update(key, 'utf8'), cipher.final()]);
    return ['v1', iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), ct.toString('base64url')].join('.');
  }

  decrypt(skuId: string, sealed: string): string {
    const [v, ivText, tagText, ct] = sealed.split('.');
    if (v !== 'v1' || !ivText || !tagText || ct === undefined) throw new Error('not a sealed card key');
    const iv = Buffer.from(ivText, 'base64url');
    const tag = Buffer.from(tagText, 'base64url');
    // Exactly what encrypt makes: Node's GCM accepts a tag cut to 4 bytes, which would leave a forged
    // value a 2^-32 chance instead of 2^-128.
    if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) throw new Error('not a sealed card key');
    const decipher = createDecipheriv('aes-256-gcm', this.encKey, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(skuId));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(Buffer.from(ct, 'base64url')), decipher.final()]).toString('utf8');
  }

  hash(skuId: string, key: string): string {
    return createHmac('sha256', this.macKey).update(skuId).update('\u0000').update(key).digest('hex');
  }
}
