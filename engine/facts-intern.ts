// One shared copy of the facts that many orders repeat: SKU ids, dates, merchant ids and SKU attribute
// objects. A buyer's orders are kept for months and evaluated against every rule on every hold; with
// copies of their own they are scattered over the heap, and evaluating a buyer who has 10 orders cost
// ~35 µs when buyers were visited in turn against ~9 µs for one buyer again and again (cache and TLB
// misses, measured). Shared copies are few and stay hot, and equal facts are then the same object, so
// comparing them is one pointer comparison. A memo only: nothing depends on whether a value was interned.
//
// Attribute objects are frozen once shared. The tables are bounded: when one is full it starts afresh
// (values interned before stay valid, they are just no longer shared with later ones).

import type { OrderFactsOnly } from './rules.ts';

/** Entries per intern table before it starts afresh. */
export const INTERN_TABLE_MAX = 65_536;

const strings = new Map<string, string>();
const attributesByKey = new Map<string, Readonly<Record<string, string>>>();
/**
 * The shared copy of a frozen attributes object seen before (e.g. a catalog SKU's, passed on every
 * order). Frozen ones only: an object that may still change cannot stand for its contents.
 */
const attributesByObject = new WeakMap<object, Readonly<Record<string, string>>>();

/** The shared copy of `s`. */
export function internString(s: string): string {
  const known = strings.get(s);
  if (known !== undefined) return known;
  if (strings.size >= INTERN_TABLE_MAX) strings.clear();
  strings.set(s, s);
  return s;
}

/** A frozen shared copy of `attributes` (equal contents, in any key order, give the same object). */
export function internAttributes(attributes: Readonly<Record<string, string>>): Readonly<Record<string, string>> {
  const frozen = Object.isFrozen(attributes);
  if (frozen) {
    const seen = attributesByObject.get(attributes);
    if (seen !== undefined) return seen;
  }
  const keys = Object.keys(attributes).sort();
  const key = JSON.stringify(keys.map((k) => [k, attributes[k]]));
  let shared = attributesByKey.get(key);
  if (shared === undefined) {
    const copy: Record<string, string> = {};
    for (const k of keys) copy[internString(k)] = internString(attributes[k]!);
    shared = Object.freeze(copy);
    if (attributesByKey.size >= INTERN_TABLE_MAX) attributesByKey.clear();
    attributesByKey.set(key, shared);
  }
  if (frozen) attributesByObject.set(attributes, shared);
  attributesByObject.set(shared, shared);
  return shared;
}

const factsByKey = new Map<string, OrderFactsOnly>();

/** The shared, frozen facts of an order of `skuId` on `date` (attributes shared too): one object per SKU/date. */
export function internFacts(o: OrderFactsOnly): OrderFactsOnly {
  const attributes = internAttributes(o.attributes);
  // The attributes object stands for its contents here: equal contents share one object.
  let id = attributeIds.get(attributes);
  if (id === undefined) attributeIds.set(attributes, (id = nextAttributeId++));
  const key = JSON.stringify([o.skuId, o.date, o.merchantId, id]);
  let shared = factsByKey.get(key);
  if (shared === undefined) {
    shared = Object.freeze({ skuId: internString(o.skuId), date: internString(o.date), merchantId: internString(o.merchantId), attributes });
    if (factsByKey.size >= INTERN_TABLE_MAX) factsByKey.clear();
    factsByKey.set(key, shared);
  }
  return shared;
}

const attributeIds = new WeakMap<object, number>();
let nextAttributeId = 1;
