/**
 * Streaming slot rewriting with HTMLRewriter: elements marked `data-attune-slot="…"` get
 * the content chosen for the person, in the HTML response itself, as it streams — bytes
 * before a slot are already on their way to the browser while later parts of the origin
 * page are still being produced. A slot waits for its decision at most until the
 * request's deadline; on timeout, on error, or when there is nothing to show, the origin's
 * default content stays. The page is never truncated: a failing slot is skipped, not the stream.
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

async function fillWithin(
  filler: SlotFiller,
  request: SlotRequest,
  deadline: number,
): Promise<FilledSlot | null> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const result = filler(request);
    if (!(result instanceof Promise)) return result;
    const left = deadline - Date.now();
    if (left <= 0) {
      result.catch(() => undefined);
      return null;
    }
    return await Promise.race([
      result,
      new Promise<null>((resolve) => {
        timer = setTimeout(() => resolve(null), left);
      }),
    ]);
  } catch (error) {
    console.warn(JSON.stringify({ msg: 'slot kept its default', slot: request.slot, error: String(error) }));
    return null;
  } finally {
    clearTimeout(timer);
  }
}

/** The source of a start tag, rebuilt from what the parser saw (attribute values are kept raw). */
function startTagSource(el: Element): string {
  let out = `<${el.tagName}`;
  for (const [name, value = ''] of el.attributes) out += ` ${name}="${value.replace(/"/g, '&quot;')}"`;
  return `${out}>`;
}

/**
 * Rewrites the slots of an HTML response as it streams; headers are the caller's business.
 *
 * A filled slot gets its new content at its start tag, and its default content is removed
 * as it streams past — but remembered until the slot's end tag, so that malformed HTML
 * whose slot is never closed gets the remembered content back at the end of the document
 * instead of losing the rest of the page.
 */
export function rewriteSlots(response: Response, filler: SlotFiller, options: RewriteOptions): Response {
  /** The default content removed from the slot being filled, until its end tag. */
  let open: string[] | undefined;
  const rewriter = new HTMLRewriter()
    .on('[data-attune-slot]', {
      async element(el) {
        if (open) return; // a slot nested in a filled slot goes with its parent's default
        const slot = attribute(el, 'data-attune-slot');
        if (slot === undefined) return;
        const productId = attribute(el, 'data-attune-product');
        const category = attribute(el, 'data-attune-category');
        const request: SlotRequest = {
          slot,
          ...(productId !== undefined ? { productId } : {}),
          ...(category !== undefined ? { category } : {}),
        };
        const filled = await fillWithin(filler, request, options.deadline);
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
  return rewriter.transform(response);
}
