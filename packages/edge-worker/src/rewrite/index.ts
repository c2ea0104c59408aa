/**
 * Streaming slot rewriting with HTMLRewriter: elements marked `data-attune-slot="…"` get
 * the content chosen for the person, in the HTML response itself, as it streams — bytes
 * before a slot are already on their way to the browser while the decision is still being
 * made and later parts of the origin page are still being produced. A slot waits for its
 * decision at most until the request's deadline; on timeout, on error, or when there is
 * nothing to show, the origin's default content stays. The page is never truncated: a
 * failing slot is skipped, not the stream.
 */

import { log } from '../observability/index.ts';
import {
  adoptionMovesContent,
  ENCLOSING,
  type Enclosing,
  holdsContent,
  isFormatting,
  isSpecial,
  OPTIONAL_END_TAG,
  startTagInSlot,
} from './implied-ends.ts';

/** What a slot gets: its inner HTML and the ids to mark it with. */
export interface FilledSlot {
  html: string;
  variant: string;
  decisionId: string;
}

/** What the page says about a slot, so a decision can be made in context. */
export interface SlotRequest {
  slot: string;
  productId?: string;
  category?: string;
}

/** Makes the content of one slot; null keeps the default. May be async (bounded by the deadline). */
export type SlotFiller = (request: SlotRequest) => FilledSlot | null | Promise<FilledSlot | null>;

export interface RewriteOptions {
  /** Epoch ms after which a slot stops waiting for its decision. */
  deadline: number;
  /**
   * Settles when the decision the filler needs is known. Until then (at most until the
   * deadline) the page is held just before the first slot's start tag, outside the
   * rewriter, so that every byte before it reaches the browser at once.
   */
  decided?: Promise<unknown>;
  /** Called when a slot was filled (e.g. to record the decision as served). */
  onFilled?: (request: SlotRequest, filled: FilledSlot) => void;
  /** Called once the whole document went through. */
  onEnd?: () => void;
}

const MAX_ATTRIBUTE = 128;

/**
 * Slot content with every non-ASCII character as a numeric character reference, which
 * reads the same in any charset a rewritten page can have. HTMLRewriter writes inserted
 * text in the charset of the Content-Type header, UTF-8 when it names none; but a page may
 * declare its charset only in a `<meta>` (an older shop in windows-1252 or Shift_JIS), and
 * its browser then read the UTF-8 bytes of a price's `€` as `â‚¬`. The text of a `<script>`
 * or `<style>` is left as it is: a browser reads no references there, so `content: "→"`
 * would have shown `&#8594;` on every page, not only on such a shop's.
 */
export function asciiHtml(html: string): string {
  return html.replace(RAW_TEXT_OR_NON_ASCII, (match, rawText: string | undefined) =>
    rawText !== undefined ? rawText : references(match),
  );
}

/**
 * A `<script>` or `<style>` element, whole, up to its own end tag (captured), or a run of
 * non-ASCII code units. Its own expression, without the `u` flag: case-insensitive under
 * `u`, a range of non-ASCII characters takes in `s` and `k` (their case-folded `ſ` and
 * Kelvin sign), which then went in as references. The name ends where a tag name does (a
 * space, `/` or `>`): `\b` would also end it at a hyphen, taking a `<style-guide>` custom
 * element for a style element. The end tag must be the element's own
 * (`\2`): a browser ends a script only at `</script`, so `<script>"</style>→"</script>` is
 * script text throughout, and its `→` was turned into a reference the script then printed.
 */
const RAW_TEXT_OR_NON_ASCII = /(<(script|style)(?=[\s/>])[^>]*>[\s\S]*?<\/\2\s*>)|[^\0-\x7f]+/gi;

/**
 * A run of non-ASCII text as references to its code points. The C1 controls (U+0080–U+009F)
 * are dropped: they have no reference that means them (HTML reads `&#128;`–`&#159;` as the
 * windows-1252 characters, `&#128;` as `€`), and as controls they are no text to show.
 */
function references(run: string): string {
  let out = '';
  for (const ch of run) {
    const code = ch.codePointAt(0) ?? 0;
    if (code > 0x9f) out += `&#${code};`;
  }
  return out;
}

function attribute(el: Element, name: string): string | undefined {
  const value = el.getAttribute(name);
  return value !== null && value !== '' && value.length <= MAX_ATTRIBUTE ? value : undefined;
}

/** The filler's answer, bounded by the deadline; synchronous when the filler is. */
function fillWithin(
  filler: SlotFiller,
  request: SlotRequest,
  deadline: number,
): FilledSlot | null | Promise<FilledSlot | null> {
  const keepDefault = (error: unknown) => {
    console.warn(JSON.stringify({ msg: 'slot kept its default', slot: request.slot, error: String(error) }));
    return null;
  };
  let result: ReturnType<SlotFiller>;
  try {
    result = filler(request);
  } catch (error) {
    return keepDefault(error);
  }
  if (!(result instanceof Promise)) return result;
  if (deadline <= Date.now()) {
    result.catch(() => undefined);
    return null;
  }
  return beforeDeadline(result, deadline).catch(keepDefault);
}

/** `promise`'s outcome, or null once `deadline` (epoch ms) passes; the timer is cleared either way. */
function beforeDeadline<T>(promise: Promise<T>, deadline: number): Promise<T | null> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    promise,
    new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), deadline - Date.now());
    }),
  ]).finally(() => clearTimeout(timer));
}

/** `data-attune-slot`, as bytes: the origin's HTML is searched before it is decoded. */
const SLOT_MARKER = new TextEncoder().encode('data-attune-slot');
const LESS_THAN = 0x3c;

/** Whether the marker starts at `i` of `bytes`, as an attribute name (after whitespace, `/` or a quote, any case). */
function markerAt(bytes: Uint8Array, i: number): boolean {
  const before = bytes[i - 1];
  // Tab, LF, FF, CR, space, `/`: what may precede an attribute name inside a tag.
  const quoted = before === 0x22 || before === 0x27;
  if (
    !isTagSpace(before) &&
    before !== 0x2f &&
    // The quote ending the previous attribute's value (`class="x"data-attune-slot`: a parse
    // error, but browsers and HTMLRewriter still read the attribute, so the slot is filled).
    !quoted
  )
    return false;
  if (i + SLOT_MARKER.length > bytes.length) return false;
  for (let k = 0; k < SLOT_MARKER.length; k++) {
    // Upper-case ASCII letters fold to lower case; the marker's `-` is unchanged by the fold.
    if (((bytes[i + k] ?? 0) | 0x20) !== SLOT_MARKER[k]) return false;
  }
  // After a quote, the name must end there as an attribute's does (`=`, whitespace, `>`, `/`,
  // or the chunk's end): a script's getAttribute("data-attune-slot") is not a slot.
  const after = bytes[i + SLOT_MARKER.length];
  return (
    !quoted || after === undefined || after === 0x3d || after === 0x3e || after === 0x2f || isTagSpace(after)
  );
}

/** Tab, LF, FF, CR, space. */
function isTagSpace(byte: number | undefined): boolean {
  return byte === 0x09 || byte === 0x0a || byte === 0x0c || byte === 0x0d || byte === 0x20;
}

/**
 * Where the first slot's start tag begins in `chunk`: the `<` before the first
 * `data-attune-slot` attribute, 0 when the tag (or the marker) began in an earlier chunk
 * (`tail` holds that chunk's last bytes), or -1 when the chunk has no slot.
 */
export function slotTagStart(chunk: Uint8Array, tail: Uint8Array): number {
  if (tail.length > 0) {
    const seam = new Uint8Array(tail.length + Math.min(chunk.length, SLOT_MARKER.length));
    seam.set(tail);
    seam.set(chunk.subarray(0, seam.length - tail.length), tail.length);
    for (let i = 1; i <= tail.length; i++) if (markerAt(seam, i)) return 0;
  }
  const last = chunk.length - SLOT_MARKER.length;
  for (let i = 1; i <= last; i++) {
    // `d` or `D` first, the cheap test that rules out almost every position.
    if (((chunk[i] ?? 0) | 0x20) === 0x64 && markerAt(chunk, i))
      return Math.max(0, chunk.lastIndexOf(LESS_THAN, i));
  }
  return -1;
}

/**
 * Holds the origin's bytes just before the first slot until `decided` settles or the
 * deadline passes — outside HTMLRewriter, because while an async element handler waits,
 * workerd's HTMLRewriter sends nothing of the input it is working on, not even the bytes
 * that precede the element. So the head, the header and everything above the first slot
 * reach the browser while the decision is made, and the slot itself is then filled
 * without waiting. After that single wait the stream flows untouched.
 */
function slotGate(decided: Promise<unknown>, deadline: number): TransformStream<Uint8Array, Uint8Array> {
  let flowing = false;
  void decided.then(
    () => {
      flowing = true;
    },
    () => {
      flowing = true;
    },
  );
  let tail = new Uint8Array(0);
  const waitForDecision = async () => {
    if (deadline > Date.now())
      await beforeDeadline(
        decided.catch(() => undefined),
        deadline,
      );
    flowing = true;
  };
  return new TransformStream<Uint8Array, Uint8Array>({
    async transform(chunk, controller) {
      if (flowing) {
        controller.enqueue(chunk);
        return;
      }
      const at = slotTagStart(chunk, tail);
      if (at < 0) {
        tail = chunk.slice(Math.max(0, chunk.length - SLOT_MARKER.length));
        controller.enqueue(chunk);
        return;
      }
      if (at > 0) controller.enqueue(chunk.subarray(0, at));
      await waitForDecision();
      controller.enqueue(chunk.subarray(at));
    },
  });
}

/** The source of a start tag, rebuilt from what the parser saw (attribute values are kept raw). */
function startTagSource(el: Element): string {
  let out = `<${el.tagName}`;
  for (const [name, value = ''] of el.attributes) out += ` ${name}="${value.replace(/"/g, '&quot;')}"`;
  return `${out}>`;
}

/**
 * Slots filled per page at most. A page rarely has more than a handful; one whose user
 * content can carry `data-*` attributes (a sanitizer allows them) could otherwise have a
 * review make a thousand decisions, and log a thousand `decision.served` events, per view.
 */
export const MAX_PAGE_SLOTS = 20;

/** An element that started inside a slot while the slot's default content was being removed. */
interface Opened {
  name: string;
  /** Its start tag, as removed. */
  source: string;
  /** Still open as a browser parses the page (an implied end tag may have closed it). */
  parsed: boolean;
  /** Still open for HTMLRewriter, which has yet to call its end-tag handler. */
  open: boolean;
  /** Closed by its own end tag (not implicitly). */
  ended: boolean;
}

/** A filled slot whose default content streams past. */
interface Filling {
  tag: string;
  /** Elements around the slot that a start tag inside it could close. */
  enclosing: ReadonlySet<Enclosing>;
  /** The default content is being removed: the browser would still put it in the slot. */
  removing: boolean;
  /** What was removed, for a slot left unclosed to get it back. */
  removed: string[];
  /** Elements whose start tag was removed, in the order they started. */
  inside: Opened[];
  /**
   * An element inside was closed by the end tag that ends the slot (or an element around
   * it): HTMLRewriter took that end tag for the element's own and removed it with the
   * element, so the slot's end handler puts it back.
   */
  endTagTaken: boolean;
  /**
   * Formatting elements whose start tags were written into the page where the browser
   * reopens them (see reopenedAfter), innermost last: still open there unless an end tag
   * HTMLRewriter does not report closed them.
   */
  reopened: Reopened[];
}

/** A formatting element written back into a slot being filled, where the browser reopens it. */
interface Reopened {
  name: string;
  /** The removed elements it was reopened inside, as HTMLRewriter held them open. */
  within: Opened[];
}

/**
 * Elements that put a marker on the browser's list of active formatting elements: their end
 * clears the list up to it, so the formatting elements left open inside them are never reopened.
 */
const MARKERS: ReadonlySet<string> = new Set([
  'applet',
  'caption',
  'marquee',
  'object',
  'td',
  'template',
  'th',
]);

/** End tags closing `reopened`, innermost first; they leave the slot's state. */
function closeReopened(state: Filling, reopened: readonly Reopened[]): string {
  state.reopened = state.reopened.filter((r) => !reopened.includes(r));
  return [...reopened]
    .reverse()
    .map((r) => `</${r.name}>`)
    .join('');
}

/**
 * The whole removed default, to go back into the page: first the reopened formatting elements
 * are closed, since the default given back reopens them itself where the origin's did (left
 * open, they wrapped the rest of the page: `<em><div slot><b><em>a</b>c</em></div></em>`,
 * where HTMLRewriter takes the inner `</em>` for the outer one's and ends the slot there).
 */
function givenBack(state: Filling): string {
  return closeReopened(state, state.reopened) + state.removed.join('');
}

/** The elements removed from a slot that no end tag of theirs closed. */
function unclosed(state: Filling): Opened[] {
  return state.inside.filter((e) => !e.ended);
}

/**
 * What the browser reopens after an element inside a slot is closed by its own end tag, when
 * `later` (the elements removed after it, which HTMLRewriter closes with it) held formatting
 * elements that no end tag of theirs closed: the browser pops them too but keeps them on its
 * list of active formatting elements, and reopens them for what follows (`<b><i>a</b>c</i>`
 * puts `c` in a new `<i>`). Their start tags go into the page right there, and they count as
 * ended: an end tag of theirs still to come (HTMLRewriter does not report it: it has nothing
 * of that name open) then closes them in the page as in the origin's, and one that never
 * comes leaves them open past the slot, as in the origin's. Not when a block element is
 * among them: the browser then moves content instead (see adoptionMovesContent), and only
 * the slot's end gives it all back.
 */
function reopenedAfter(state: Filling, opened: Opened, later: Opened[]): string {
  const open = later.filter((e) => !e.ended);
  if (MARKERS.has(opened.name)) {
    // A cell (or the like) ending clears them from the list for good: no reopening, now or
    // after the slot; those reopened inside it are closed in the page too.
    for (const e of open) if (isFormatting(e.name)) e.ended = true;
    return closeReopened(
      state,
      state.reopened.filter((r) => r.within.includes(opened)),
    );
  }
  if (open.some((e) => !isFormatting(e.name) && isSpecial(e.name))) return '';
  const reopened = open.filter((e) => isFormatting(e.name));
  const within = state.inside.filter((e) => e.open);
  for (const e of reopened) {
    e.ended = true;
    state.reopened.push({ name: e.name, within });
  }
  return reopened.map((e) => e.source).join('');
}

/**
 * What goes back where a filled slot ends at `tag`: everything removed if the browser would
 * move some of it out of the slot, else the start tags of the formatting elements left open
 * (the browser reopens them for what follows the slot).
 */
function carriedOver(state: Filling, tag: { start: string } | { end: string }): string {
  const open = unclosed(state);
  if (
    adoptionMovesContent(
      tag,
      open.map((e) => e.name),
    )
  )
    return givenBack(state);
  return open
    .filter((e) => isFormatting(e.name))
    .map((e) => e.source)
    .join('');
}

/**
 * Rewrites the slots of an HTML response as it streams; headers are the caller's business.
 * The first MAX_PAGE_SLOTS slots are filled; the rest keep the origin's content. A page in a
 * charset HTMLRewriter cannot parse is returned as it is, body unread.
 *
 * A filled slot gets its new content at its start tag, and its default content is removed
 * as it streams past, up to where a browser ends the slot: its end tag, the end tag of an
 * element around it, or a start tag that HTML says closes it (`<p>` after a paragraph,
 * `<li>` after a list item: see implied-ends.ts; HTMLRewriter takes those as nested). What
 * follows is never touched. A slot that is not closed the way HTML allows — the document
 * ends inside it, or an enclosing end tag closes it although its own is required
 * (`<div data-attune-slot/>`) — gets the removed content back there, after the new content,
 * instead of losing that part of the page; so does one whose end makes the browser move
 * removed blocks out of it (misnested formatting tags). Formatting elements left open in
 * the default (`<b>` without `</b>`) are given back where the slot ends, since the browser
 * carries them on past it; those an end tag closed along with another element (`<b><i>a</b>`)
 * are reopened at that end tag, as the browser reopens them, so that their own end tag later
 * in the default still closes them; an `<a>` that a new `<a>` closed is given back nowhere.
 *
 * The content is removed piece by piece, not with `setInnerContent`: that removes whatever
 * HTMLRewriter takes to be inside the element, so `<p>a<p>b`, `<li>a<li>b` and an unclosed
 * slot lost the rest of the page. HTMLRewriter also hands an element closed by an enclosing
 * end tag (`<div><p>a</div>`) that end tag, and removing the element removes the tag: it is
 * put back.
 */
export function rewriteSlots(response: Response, filler: SlotFiller, options: RewriteOptions): Response {
  // The origin's body is piped into the gate only once the rewriter has taken the page (see
  // the end): until then it is untouched, so a page the rewriter refuses is served as it came.
  const body = response.body;
  const gate = options.decided && body ? slotGate(options.decided, options.deadline) : undefined;
  const source = gate ? new Response(gate.readable, response) : response;
  /** The slot being filled, or the last one filled while HTMLRewriter holds open elements removed from it. */
  let filling: Filling | undefined;
  /** Slots asked for so far: past MAX_PAGE_SLOTS the rest keep their defaults. */
  let asked = 0;
  /** Elements around the slot element being handled, as the ENCLOSING selectors found them. */
  let around = new Set<Enclosing>();

  const settle = () => {
    if (filling && !filling.removing && !filling.inside.some((e) => e.open)) filling = undefined;
  };

  /** The end-tag handler of an element whose start tag was removed. */
  const endOfOpened = (state: Filling, opened: Opened, end: EndTag) => {
    const at = Math.max(0, state.inside.indexOf(opened));
    const later = state.inside.slice(at + 1);
    // HTMLRewriter closes the elements that started after this one with it.
    for (const e of state.inside.slice(at)) {
      e.open = false;
      e.parsed = false;
    }
    const name = end.name;
    // An element a new `<a>` or `<nobr>` ended stays ended, whatever tag HTMLRewriter closes it at.
    opened.ended ||= name === opened.name;
    const reopened = name === opened.name && state.removing ? reopenedAfter(state, opened, later) : '';
    // Closed by their own end tags, they matter no more (left open, they may be reopened).
    state.inside = state.inside.filter((e) => e.open || !e.ended);
    if (name === opened.name) {
      // Its own end tag, removed with its start tag; once the slot has ended it belongs to the page.
      if (state.removing) {
        state.removed.push(`</${name}>`);
        if (reopened !== '') end.after(reopened, { html: true });
      } else end.after(`</${name}>`, { html: true });
    } else if (!state.inside.some((e) => e.open && e.name === name)) {
      // Implicitly closed by the slot's end tag or an enclosing one: the slot's handler
      // runs next for the same tag (innermost first) and puts it back.
      state.endTagTaken = true;
    }
    settle();
  };

  /** The slot's own end-tag handler. */
  const endOfSlot = (state: Filling, end: EndTag) => {
    if (state.removing) {
      state.removing = false;
      const back =
        end.name !== state.tag && !OPTIONAL_END_TAG.has(state.tag)
          ? givenBack(state)
          : carriedOver(state, { end: end.name });
      if (back !== '') end.before(back, { html: true });
      state.removed = [];
      state.reopened = [];
    }
    if (state.endTagTaken) {
      state.endTagTaken = false;
      end.after(`</${end.name}>`, { html: true });
    }
    if (filling === state) filling = undefined;
  };

  // HTMLRewriter calls an element's handlers in the order they were registered: a start tag
  // is checked for ending the slot being filled before it is seen as a slot of its own, and
  // the enclosing elements of a slot are known when its handler runs.
  const rewriter = new HTMLRewriter().on('[data-attune-slot] *', {
    element(el) {
      const state = filling;
      if (!state?.removing) return;
      const tag = el.tagName.toLowerCase();
      const parsed = state.inside.filter((e) => e.parsed);
      const effect = startTagInSlot(
        tag,
        state.tag,
        parsed.map((e) => e.name),
        state.enclosing,
      );
      if (effect.endsSlot) {
        // The browser ends the slot here: this element and the rest are the page's, and so
        // are the formatting elements it reopens after the slot (or, where it moves open
        // content out of the slot, everything removed).
        const back = carriedOver(state, { start: tag });
        if (back !== '') el.before(back, { html: true });
        state.removing = false;
        state.removed = [];
        state.reopened = [];
        settle();
        return;
      }
      const closed = parsed.slice(parsed.length - effect.closes);
      for (const e of closed) e.parsed = false;
      // The adoption agency takes the `<a>` (`<nobr>`) a new one closes off the list of active
      // formatting elements too, also one an end tag closed first (`<b><a>a</b><a>`), as long
      // as no cell (marker) opened since: the browser never reopens it, after the slot neither,
      // and one the rewriter reopened in the page is closed there.
      if (tag === 'a' || tag === 'nobr') {
        for (const e of [...state.inside].reverse()) {
          if (e.open && MARKERS.has(e.name)) break;
          if (e.name === tag) e.ended = true;
        }
        const markers = state.inside.filter((e) => e.open && MARKERS.has(e.name));
        const stale = state.reopened.filter(
          (r) => r.name === tag && markers.every((m) => r.within.includes(m)),
        );
        const closing = closeReopened(state, stale);
        if (closing !== '') el.before(closing, { html: true });
      }
      const source = startTagSource(el);
      state.removed.push(source);
      el.removeAndKeepContent();
      const opened: Opened = { name: tag, source, parsed: !effect.ignored, open: true, ended: false };
      try {
        el.onEndTag((end) => endOfOpened(state, opened, end));
      } catch {
        return; // a void element has no end tag
      }
      state.inside.push(opened);
    },
  });
  for (const name of ENCLOSING)
    rewriter.on(`${name} [data-attune-slot]`, {
      element() {
        around.add(name);
      },
    });
  rewriter
    .on('[data-attune-slot]', {
      element(el) {
        const enclosing = around;
        around = new Set();
        // A slot inside one being filled goes with that one's default; so does one while
        // HTMLRewriter holds elements open whose end tags the last fill has to handle.
        if (filling) return;
        const slot = attribute(el, 'data-attune-slot');
        const tag = el.tagName.toLowerCase();
        if (slot === undefined || !holdsContent(tag, enclosing)) return;
        let state: Filling | undefined;
        try {
          el.onEndTag((end) => {
            if (state) endOfSlot(state, end);
          });
        } catch {
          return; // a void element (`<img data-attune-slot>`) has no content to replace
        }
        if (++asked > MAX_PAGE_SLOTS) return;
        const productId = attribute(el, 'data-attune-product');
        const category = attribute(el, 'data-attune-category');
        const request: SlotRequest = {
          slot,
          ...(productId !== undefined ? { productId } : {}),
          ...(category !== undefined ? { category } : {}),
        };
        const apply = (filled: FilledSlot | null) => {
          if (!filled) return;
          state = {
            tag,
            enclosing,
            removing: true,
            removed: [],
            inside: [],
            endTagTaken: false,
            reopened: [],
          };
          filling = state;
          el.prepend(asciiHtml(filled.html), { html: true });
          el.setAttribute('data-attune-variant', filled.variant);
          el.setAttribute('data-attune-decision', filled.decisionId);
          options.onFilled?.(request, filled);
        };
        // A decision already known fills the slot synchronously: an async handler makes
        // HTMLRewriter hold its whole input chunk until the handler settles.
        const filled = fillWithin(filler, request, options.deadline);
        if (filled instanceof Promise) return filled.then(apply);
        apply(filled);
      },
      text(chunk) {
        if (!filling?.removing) return;
        filling.removed.push(chunk.text);
        chunk.remove();
      },
      comments(comment) {
        if (!filling?.removing) return;
        filling.removed.push(`<!--${comment.text}-->`);
        comment.remove();
      },
    })
    .onDocument({
      end(end) {
        // The page ended inside the slot: the default comes back rather than the rest of the
        // page being lost (even where HTML lets the end tag be left out: the slot may have
        // ended at a tag HTMLRewriter does not report, such as `</h2>` closing an `<h3>`).
        if (filling?.removing && filling.removed.length > 0)
          end.append(filling.removed.join(''), { html: true });
        filling = undefined;
        options.onEnd?.();
      },
    });
  let rewritten: Response;
  try {
    rewritten = rewriter.transform(source);
  } catch (error) {
    // HTMLRewriter parses only ASCII-compatible encodings it knows: a page declared in another
    // (`charset=utf-16`, `utf-16le`, `iso-2022-jp`, `replacement`, an unknown label) is refused
    // at once, before a byte is read. Its slots keep their defaults; the page is not a 500.
    log('warn', 'page not rewritten', {
      contentType: response.headers.get('content-type') ?? '',
      error: String(error),
    });
    return response;
  }
  if (gate && body) void body.pipeTo(gate.writable).catch(() => undefined);
  return rewritten;
}
