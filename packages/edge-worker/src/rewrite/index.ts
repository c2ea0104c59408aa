/**
 * Streaming slot rewriting with HTMLRewriter: elements marked `data-attune-slot="…"` get
 * the content chosen for the person, in the HTML response itself, as it streams — bytes
 * before a slot are already on their way to the browser while the decision is still being
 * made and later parts of the origin page are still being produced. A slot waits for its
 * decision at most until the request's deadline; on timeout, on error, or when there is
 * nothing to show, the origin's default content stays. The page is never truncated: a
 * failing slot is skipped, not the stream.
 */

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

/** Whether the marker starts at `i` of `bytes`, as an attribute name (after whitespace or `/`, any case). */
function markerAt(bytes: Uint8Array, i: number): boolean {
  const before = bytes[i - 1];
  // Tab, LF, FF, CR, space, `/`: what may precede an attribute name inside a tag.
  if (
    before !== 0x09 &&
    before !== 0x0a &&
    before !== 0x0c &&
    before !== 0x0d &&
    before !== 0x20 &&
    before !== 0x2f
  )
    return false;
  if (i + SLOT_MARKER.length > bytes.length) return false;
  for (let k = 0; k < SLOT_MARKER.length; k++) {
    // Upper-case ASCII letters fold to lower case; the marker's `-` is unchanged by the fold.
    if (((bytes[i + k] ?? 0) | 0x20) !== SLOT_MARKER[k]) return false;
  }
  return true;
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

/**
 * Rewrites the slots of an HTML response as it streams; headers are the caller's business.
 * The first MAX_PAGE_SLOTS slots are filled; the rest keep the origin's content.
 *
 * A filled slot gets its new content at its start tag, and its default content is removed
 * as it streams past — but remembered until the slot's end tag, so that malformed HTML
 * whose slot is never closed gets the remembered content back at the end of the document
 * instead of losing the rest of the page.
 */
export function rewriteSlots(response: Response, filler: SlotFiller, options: RewriteOptions): Response {
  const source =
    options.decided && response.body
      ? new Response(response.body.pipeThrough(slotGate(options.decided, options.deadline)), response)
      : response;
  /** The default content removed from the slot being filled, until its end tag. */
  let open: string[] | undefined;
  /** Slots asked for so far: past MAX_PAGE_SLOTS the rest keep their defaults. */
  let asked = 0;
  const rewriter = new HTMLRewriter()
    .on('[data-attune-slot]', {
      element(el) {
        if (open) return; // a slot nested in a filled slot goes with its parent's default
        const slot = attribute(el, 'data-attune-slot');
        if (slot === undefined || ++asked > MAX_PAGE_SLOTS) return;
        const productId = attribute(el, 'data-attune-product');
        const category = attribute(el, 'data-attune-category');
        const request: SlotRequest = {
          slot,
          ...(productId !== undefined ? { productId } : {}),
          ...(category !== undefined ? { category } : {}),
        };
        const apply = (filled: FilledSlot | null) => {
          if (!filled) return;
          const ledger: string[] = [];
          try {
            el.onEndTag(() => {
              if (open === ledger) open = undefined;
            });
          } catch {
            return; // a void element (`<img data-attune-slot>`) has no content to replace
          }
          open = ledger;
          el.prepend(filled.html, { html: true });
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
        if (!open) return;
        open.push(chunk.text);
        chunk.remove();
      },
      comments(comment) {
        if (!open) return;
        open.push(`<!--${comment.text}-->`);
        comment.remove();
      },
    })
    .on('[data-attune-slot] *', {
      element(el) {
        const ledger = open;
        if (!ledger) return;
        ledger.push(startTagSource(el));
        el.removeAndKeepContent();
        try {
          el.onEndTag((end) => {
            ledger.push(`</${end.name}>`);
          });
        } catch {
          // Void elements have no end tag.
        }
      },
    })
    .onDocument({
      end(end) {
        // The slot was never closed: give the page its content back rather than truncate it.
        if (open && open.length > 0) end.append(open.join(''), { html: true });
        open = undefined;
        options.onEnd?.();
      },
    });
  return rewriter.transform(source);
}
