/** CovisitationDO: "viewed next" item-to-item transition counts, one object per item shard. */
import { DurableObject } from 'cloudflare:workers';

export class CovisitationDO extends DurableObject<Env> {}
