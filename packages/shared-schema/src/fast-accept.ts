/**
 * A fast acceptance check derived from a zod schema: "fast accept, slow explain". Most
 * events on the wire are valid, and for them a closure-compiled predicate is several
 * times cheaper than a zod parse (which builds issue lists and copies objects). When the
 * predicate says no, the caller runs the zod schema itself for the readable errors, so
 * zod stays the one source of truth for rules and messages.
 *
 * Contract: `fastAcceptor(schema)(value)` is true only when `schema.safeParse(value)`
 * succeeds AND returns a value deep-equal to the input (so the input can be used as the
 * output). Anything this compiler does not understand (transforms, defaults, stripping
 * objects with unknown keys) answers false and takes the zod path. Built from closures,
 * not `new Function`, so it runs in Workers, where eval is not allowed.
 * fast-accept.test.ts checks the contract against zod on generated inputs.
 */
import type { z } from 'zod';

export type Acceptor = (value: unknown) => boolean;

const REJECT: Acceptor = () => false;

/** The parts of zod 4's internal definitions this compiler reads (stable in zod 4's core). */
interface Def {
  type: string;
  checks?: { _zod: { def: CheckDef } }[];
  // string formats (z.iso.datetime) are checks on themselves
  check?: string;
  format?: string;
  pattern?: RegExp;
  fn?: (value: unknown) => unknown;
  innerType?: z.core.$ZodType;
  shape?: Record<string, z.core.$ZodType>;
  catchall?: z.core.$ZodType;
  entries?: Record<string, string | number>;
  values?: readonly unknown[];
  element?: z.core.$ZodType;
  keyType?: z.core.$ZodType;
  valueType?: z.core.$ZodType;
}
interface CheckDef {
  check: string;
  minimum?: number;
  maximum?: number;
  length?: number;
  value?: number;
  inclusive?: boolean;
  format?: string;
  pattern?: RegExp;
  fn?: (value: unknown) => unknown;
}

const defOf = (schema: z.core.$ZodType): Def => schema._zod.def as unknown as Def;

/** Objects as JSON.parse makes them; zod would copy anything else (a Date, a null-prototype map) into one. */
function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype;
}

/** One check (min/max length, number bounds, formats, refinements) as a predicate, or undefined if unknown. */
function compileCheck(check: CheckDef): Acceptor | undefined {
  switch (check.check) {
    case 'min_length': {
      const min = check.minimum ?? 0;
      return (v) => (v as { length: number }).length >= min;
    }
    case 'max_length': {
      const max = check.maximum ?? Number.POSITIVE_INFINITY;
      return (v) => (v as { length: number }).length <= max;
    }
    case 'length_equals': {
      const length = check.length;
      return (v) => (v as { length: number }).length === length;
    }
    case 'string_format': {
      const pattern = check.pattern;
      if (!pattern || pattern.global || pattern.sticky) return undefined;
      return (v) => pattern.test(v as string);
    }
    case 'number_format':
      return check.format === 'safeint' ? (v) => Number.isSafeInteger(v) : undefined;
    case 'greater_than': {
      const bound = check.value ?? 0;
      return check.inclusive ? (v) => (v as number) >= bound : (v) => (v as number) > bound;
    }
    case 'less_than': {
      const bound = check.value ?? 0;
      return check.inclusive ? (v) => (v as number) <= bound : (v) => (v as number) < bound;
    }
    case 'custom': {
      const fn = check.fn;
      if (!fn) return undefined;
      return (v) => {
        const result = fn(v);
        return result === true; // a promise (async refinement) is not accepted here
      };
    }
    default:
      return undefined;
  }
}

function withChecks(def: Def, base: Acceptor): Acceptor {
  const checks: Acceptor[] = [];
  // A schema that is itself a check (z.iso.datetime, z.custom) carries it on its def.
  if (def.check !== undefined) {
    const self = compileCheck(def as CheckDef);
    if (!self) return REJECT;
    checks.push(self);
  }
  for (const c of def.checks ?? []) {
    const compiled = compileCheck(c._zod.def);
    if (!compiled) return REJECT;
    checks.push(compiled);
  }
  if (checks.length === 0) return base;
  return (v) => {
    if (!base(v)) return false;
    for (const check of checks) if (!check(v)) return false;
    return true;
  };
}

/** Every check of a def: the def itself when it is a check (string formats, z.custom), then its list. */
function checksOf(def: Def): CheckDef[] {
  const own = def.check !== undefined ? [def as CheckDef] : [];
  return [...own, ...(def.checks ?? []).map((c) => c._zod.def)];
}

/**
 * A string schema as one closure (length bounds, one pattern, refinements), instead of a
 * chain of closures per check: strings are most of what an event holds. Optional fields
 * fold in too. Returns undefined for a check it does not know.
 */
function compileString(def: Def, optional: boolean): Acceptor | undefined {
  let min = 0;
  let max = Number.POSITIVE_INFINITY;
  let pattern: RegExp | undefined;
  const refinements: ((value: unknown) => unknown)[] = [];
  for (const c of checksOf(def)) {
    switch (c.check) {
      case 'min_length':
        min = Math.max(min, c.minimum ?? 0);
        break;
      case 'max_length':
        max = Math.min(max, c.maximum ?? Number.POSITIVE_INFINITY);
        break;
      case 'length_equals':
        min = Math.max(min, c.length ?? 0);
        max = Math.min(max, c.length ?? Number.POSITIVE_INFINITY);
        break;
      case 'string_format':
        if (!c.pattern || c.pattern.global || c.pattern.sticky || pattern) return undefined;
        pattern = c.pattern;
        break;
      case 'custom':
        if (!c.fn) return undefined;
        refinements.push(c.fn);
        break;
      default:
        return undefined;
    }
  }
  const re = pattern;
  const accepts: Acceptor =
    refinements.length > 0
      ? (v) =>
          typeof v === 'string' &&
          v.length >= min &&
          v.length <= max &&
          (re === undefined || re.test(v)) &&
          refinements.every((fn) => fn(v) === true)
      : re !== undefined
        ? (v) => typeof v === 'string' && v.length >= min && v.length <= max && re.test(v)
        : (v) => typeof v === 'string' && v.length >= min && v.length <= max;
  return optional ? (v) => v === undefined || accepts(v) : accepts;
}

/** A number schema as one closure (finite, bounds, integer), like compileString. */
function compileNumber(def: Def, optional: boolean): Acceptor | undefined {
  let lower = Number.NEGATIVE_INFINITY;
  let lowerInclusive = true;
  let upper = Number.POSITIVE_INFINITY;
  let upperInclusive = true;
  let integer = false;
  let bounds = 0;
  for (const c of checksOf(def)) {
    switch (c.check) {
      case 'greater_than':
        if (lower !== Number.NEGATIVE_INFINITY) return undefined;
        lower = c.value ?? 0;
        lowerInclusive = c.inclusive === true;
        bounds++;
        break;
      case 'less_than':
        if (upper !== Number.POSITIVE_INFINITY) return undefined;
        upper = c.value ?? 0;
        upperInclusive = c.inclusive === true;
        bounds++;
        break;
      case 'number_format':
        if (c.format !== 'safeint') return undefined;
        integer = true;
        break;
      default:
        return undefined;
    }
  }
  const accepts: Acceptor = (v) =>
    typeof v === 'number' &&
    Number.isFinite(v) &&
    (!integer || Number.isSafeInteger(v)) &&
    (bounds === 0 ||
      ((lowerInclusive ? v >= lower : v > lower) && (upperInclusive ? v <= upper : v < upper)));
  return optional ? (v) => v === undefined || accepts(v) : accepts;
}

function compile(schema: z.core.$ZodType): Acceptor {
  const def = defOf(schema);
  switch (def.type) {
    case 'string':
      return compileString(def, false) ?? REJECT;
    case 'number':
      return compileNumber(def, false) ?? REJECT;
    case 'boolean':
      return withChecks(def, (v) => typeof v === 'boolean');
    case 'unknown':
    case 'any':
      return withChecks(def, () => true);
    case 'enum': {
      const values = new Set(Object.values(def.entries ?? {}));
      return withChecks(def, (v) => values.has(v as string));
    }
    case 'literal': {
      const values = new Set(def.values ?? []);
      return withChecks(def, (v) => values.has(v));
    }
    case 'custom':
      // z.custom: the schema is its own check (def.fn), and it returns the input as is.
      return withChecks({ ...def, check: 'custom' }, () => true);
    case 'optional': {
      if (!def.innerType) return REJECT;
      const innerDef = defOf(def.innerType);
      const fused =
        innerDef.type === 'string'
          ? compileString(innerDef, true)
          : innerDef.type === 'number'
            ? compileNumber(innerDef, true)
            : undefined;
      if (fused) return fused;
      const inner = compile(def.innerType);
      return (v) => v === undefined || inner(v);
    }
    case 'array': {
      if (!def.element) return REJECT;
      const element = compile(def.element);
      return withChecks(def, (v) => {
        if (!Array.isArray(v)) return false;
        // A hole (possible in an array built in process, never from JSON) is for zod: it fills it in.
        for (let i = 0; i < v.length; i++) if (!(i in v) || !element(v[i])) return false;
        return true;
      });
    }
    case 'record': {
      if (!def.keyType || !def.valueType) return REJECT;
      const key = compile(def.keyType);
      const value = compile(def.valueType);
      return withChecks(def, (v) => {
        if (!isPlainObject(v)) return false;
        for (const k in v)
          if (Object.hasOwn(v, k) && (k === '__proto__' || !key(k) || !value(v[k]))) return false;
        return true;
      });
    }
    case 'object': {
      const shape = def.shape ?? {};
      const keys = Object.keys(shape);
      const fields = new Map<string, { accepts: Acceptor; required: boolean }>();
      const required: string[] = [];
      for (const k of keys) {
        const field = shape[k];
        const isRequired = field !== undefined && defOf(field).type !== 'optional';
        fields.set(k, { accepts: field ? compile(field) : REJECT, required: isRequired });
        if (isRequired) required.push(k);
      }
      // Loose objects keep unknown keys; strict ones reject them and stripping ones would
      // drop them (the output would differ from the input): both take the zod path.
      const allowsUnknown = def.catchall !== undefined && defOf(def.catchall).type === 'unknown';
      return withChecks(def, (v) => {
        if (!isPlainObject(v)) return false;
        // One for-in pass: V8 serves `v[k]` inside it from the enum cache, where a loop over
        // the schema's keys would make a slow keyed lookup per field.
        let requiredSeen = 0;
        for (const k in v) {
          const field = fields.get(k);
          if (field === undefined) {
            // zod copies an unknown key by assignment, which turns an own "__proto__" key into
            // the copy's prototype: the output would differ, so zod decides.
            if (!allowsUnknown || k === '__proto__') return false;
            continue;
          }
          if (!field.accepts(v[k])) return false;
          if (field.required) requiredSeen++;
        }
        if (requiredSeen === required.length) return true;
        // A required field is missing: accepted only if its schema accepts undefined.
        for (const k of required)
          if (!Object.hasOwn(v, k) && !fields.get(k)?.accepts(undefined)) return false;
        return true;
      });
    }
    default:
      return REJECT;
  }
}

const cache = new WeakMap<z.core.$ZodType, Acceptor>();

/** The fast acceptance predicate of a schema (compiled once, then cached). */
export function fastAcceptor(schema: z.core.$ZodType): Acceptor {
  let acceptor = cache.get(schema);
  if (!acceptor) {
    acceptor = compile(schema);
    cache.set(schema, acceptor);
  }
  return acceptor;
}
