/**
 * Measuring lift from the event log: every decision is recorded as `decision.served`
 * (with `holdout`, `personalized`, `eligible` and the experiment), and conversions
 * (`cart.item.added`, `order.completed`) are attributed to the person's latest eligible
 * decision within the attribution window before them — or directly to the decision whose
 * id the conversion carries (`properties.decisionId`, which the site sets from the slot's
 * `data-attune-decision`; the SDK does not add it). Lift compares the conversion rates of
 * the treated and the held-out people.
 */
import { EDGE_EVENT } from '../profile/edge-events.ts';

/** An event as the log (Directus `events`) keeps it: who, what, when, properties. */
export interface LoggedEvent {
  personId: string;
  name: string;
  timestamp: string;
  properties?: Record<string, unknown>;
}

export interface GroupOutcome {
  /** Eligible people exposed to at least one decision. */
  people: number;
  /** Of them, people with at least one attributed conversion. */
  converters: number;
  conversions: number;
  rate: number;
}

export interface LiftReport {
  experiment: string;
  treatment: GroupOutcome;
  holdout: GroupOutcome;
  /**
   * (treatment rate − holdout rate) / holdout rate; null when the held-out people did not
   * convert, or when no treated person was exposed (a rate of nobody is no 0 %).
   */
  lift: number | null;
}

export const CONVERSION_EVENTS = ['cart.item.added', 'order.completed'] as const;
/** Conversions count for a decision for 7 days. */
export const ATTRIBUTION_WINDOW_MS = 7 * 24 * 3_600_000;

interface Exposure {
  at: number;
  decisionId: string;
  holdout: boolean;
}

/** Attributes conversions to decisions and compares the groups of one experiment. */
export function measureLift(
  events: LoggedEvent[],
  experiment: string,
  options: { windowMs?: number; conversions?: readonly string[] } = {},
): LiftReport {
  const windowMs = options.windowMs ?? ATTRIBUTION_WINDOW_MS;
  const conversionNames = new Set(options.conversions ?? CONVERSION_EVENTS);
  const exposures = new Map<string, Exposure[]>();
  const byDecision = new Map<string, { personId: string; holdout: boolean }>();
  for (const e of events) {
    const p = e.properties ?? {};
    if (e.name !== EDGE_EVENT.decisionServed || p.experiment !== experiment || p.eligible === false) continue;
    const at = Date.parse(e.timestamp);
    const decisionId = typeof p.decisionId === 'string' ? p.decisionId : '';
    if (!Number.isFinite(at) || decisionId === '') continue;
    const holdout = p.holdout === true;
    const list = exposures.get(e.personId) ?? [];
    list.push({ at, decisionId, holdout });
    exposures.set(e.personId, list);
    byDecision.set(decisionId, { personId: e.personId, holdout });
  }
  for (const list of exposures.values()) list.sort((a, b) => a.at - b.at);

  const converted = new Map<string, number>();
  for (const e of events) {
    if (!conversionNames.has(e.name)) continue;
    const at = Date.parse(e.timestamp);
    if (!Number.isFinite(at)) continue;
    const direct =
      typeof e.properties?.decisionId === 'string' ? byDecision.get(e.properties.decisionId) : undefined;
    let person: string | undefined;
    if (direct && direct.personId === e.personId) person = e.personId;
    else {
      const last = (exposures.get(e.personId) ?? [])
        .filter((x) => x.at <= at && at - x.at <= windowMs)
        .at(-1);
      if (last) person = e.personId;
    }
    if (person !== undefined) converted.set(person, (converted.get(person) ?? 0) + 1);
  }

  const group = (holdout: boolean): GroupOutcome => {
    let people = 0;
    let converters = 0;
    let conversions = 0;
    for (const [personId, list] of exposures) {
      // A person belongs to one group (holdout is a hash of the person): read it from their first exposure.
      if ((list[0]?.holdout ?? false) !== holdout) continue;
      people++;
      const n = converted.get(personId) ?? 0;
      if (n > 0) converters++;
      conversions += n;
    }
    return { people, converters, conversions, rate: people === 0 ? 0 : converters / people };
  };
  const treatment = group(false);
  const holdout = group(true);
  return {
    experiment,
    treatment,
    holdout,
    lift: holdout.rate > 0 && treatment.people > 0 ? (treatment.rate - holdout.rate) / holdout.rate : null,
  };
}
