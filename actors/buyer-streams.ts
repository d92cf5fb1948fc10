// Which buyers have a journal stream (`@b/<userId>`), known without reading it: a buyer's limit
// actor read its stream on every activation, and in a flash sale most buyers are new, so most of
// those reads found nothing (issue 4's rules path, issue 5's replay). At start the node hands over
// every buyer stream the journal holds (it reads the heads of all streams anyway); from then on every
// buyer write is added before it is made. Streams are known for good (actors/known-keys.ts, no
// generations); until the start's streams are in, every buyer may have a stream.
import { KnownKeys } from './known-keys.ts';

export class BuyerStreams extends KnownKeys {}
