/** ProfileDO: one Durable Object per person, holding that person's ordered state. */
import { DurableObject } from 'cloudflare:workers';

export class ProfileDO extends DurableObject<Env> {}
