/**
 * Where a browser ends a slot element although the page has no end tag for it there: HTML's
 * implied end tags (a `<p>` ends the paragraph before it, an `<li>` the list item, a `<td>`
 * the cell, …). HTMLRewriter does not model them — it nests `<p>a<p>b` and closes elements
 * only at end tags — so the rewriter asks this module, at each start tag inside a slot whose
 * default content it is removing, whether the browser would still put that element inside
 * the slot. Only the start-tag rules of the HTML tree builder ("in body", the table modes,
 * select, ruby) that pop open elements are modelled. Where the answer depends on elements
 * around the slot that the rewriter did not see, the answer is "may end the slot": stopping
 * early leaves some default content after the new one, going on too long would remove the
 * page that follows.
 */

const HEADINGS = new Set(['h1', 'h2', 'h3', 'h4', 'h5', 'h6']);

/** Elements of the "special" category (HTML § 13.2.4.2), HTML namespace. */
const SPECIAL = new Set([
  'address',
  'applet',
  'area',
  'article',
  'aside',
  'base',
  'basefont',
  'bgsound',
  'blockquote',
  'body',
  'br',
  'button',
  'caption',
  'center',
  'col',
  'colgroup',
  'dd',
  'details',
  'dir',
  'div',
  'dl',
  'dt',
  'embed',
  'fieldset',
  'figcaption',
  'figure',
  'footer',
  'form',
  'frame',
  'frameset',
  ...HEADINGS,
  'head',
  'header',
  'hgroup',
  'hr',
  'html',
  'iframe',
  'img',
  'input',
  'keygen',
  'li',
  'link',
  'listing',
  'main',
  'marquee',
  'menu',
  'meta',
  'nav',
  'noembed',
  'noframes',
  'noscript',
  'object',
  'ol',
  'p',
  'param',
  'plaintext',
  'pre',
  'script',
  'search',
  'section',
  'select',
  'source',
  'style',
  'summary',
  'table',
  'tbody',
  'td',
  'template',
  'textarea',
  'tfoot',
  'th',
  'thead',
  'title',
  'tr',
  'track',
  'ul',
  'wbr',
  'xmp',
]);

/**
 * Elements that end "has an element in scope" searches. The MathML and SVG ones are left
 * out on purpose: missing a boundary only makes the rewriter stop earlier.
 */
const SCOPE = new Set(['applet', 'caption', 'html', 'table', 'td', 'th', 'marquee', 'object', 'template']);
const BUTTON_SCOPE = new Set([...SCOPE, 'button']);

/** Start tags that close an open `<p>` in button scope ("close a p element"). */
const CLOSES_P = new Set([
  'address',
  'article',
  'aside',
  'blockquote',
  'center',
  'details',
  'dialog',
  'dir',
  'div',
  'dl',
  'fieldset',
  'figcaption',
  'figure',
  'footer',
  'header',
  'hgroup',
  'main',
  'menu',
  'nav',
  'ol',
  'p',
  'search',
  'section',
  'summary',
  'ul',
  ...HEADINGS,
  'pre',
  'listing',
  'form',
  'plaintext',
  // Not in quirks mode; counted anyway (stopping early is the safe side).
  'table',
  'hr',
  'xmp',
  'li',
  'dd',
  'dt',
]);

const TABLE_PARTS = new Set(['caption', 'col', 'colgroup', 'tbody', 'td', 'tfoot', 'th', 'thead', 'tr']);
const RUBY = new Set(['rb', 'rp', 'rt', 'rtc']);
/** What "generate implied end tags" pops, from the current node down. */
const IMPLIED_END = new Set(['dd', 'dt', 'li', 'optgroup', 'option', 'p', 'rb', 'rp', 'rt', 'rtc']);

/**
 * Elements whose end tag HTML lets a page leave out: the end of their parent (or of the
 * document) closes them as well as their own end tag does.
 */
export const OPTIONAL_END_TAG: ReadonlySet<string> = new Set([
  'li',
  'dt',
  'dd',
  'p',
  'rb',
  'rt',
  'rtc',
  'rp',
  'optgroup',
  'option',
  'colgroup',
  'caption',
  'thead',
  'tbody',
  'tfoot',
  'tr',
  'td',
  'th',
]);

/**
 * Elements around a slot that a start tag inside it can close (an enclosing `<p>`, `<li>`,
 * `<a>`, …): the rewriter learns which of them enclose a slot from selectors such as
 * `p [data-attune-slot]`, as HTMLRewriter sees the page (never fewer than the browser).
 */
export const ENCLOSING = ['p', 'li', 'dd', 'dt', 'a', 'nobr', 'button', 'table', 'select'] as const;
export type Enclosing = (typeof ENCLOSING)[number];

/**
 * What a start tag inside a slot does to it: ends it (or may), or stays inside it, closing
 * this many of the elements open inside it first; `ignored` when the browser drops the tag
 * (a `<td>` outside any table), which then opens nothing.
 */
export type StartTagEffect = { endsSlot: true } | { endsSlot: false; closes: number; ignored: boolean };

const ENDS: StartTagEffect = { endsSlot: true };

/** Where a search down the stack found its element: at this index inside the slot, the slot, around it, or nowhere. */
type Found = number | 'slot' | 'around' | undefined;

/**
 * The nearest element named in `targets` the search reaches: from the innermost element
 * open inside the slot outwards, stopping at `barrier` elements.
 */
function search(
  targets: ReadonlySet<string>,
  barrier: (name: string) => boolean,
  slot: string,
  inside: readonly string[],
  around: boolean,
): Found {
  for (let i = inside.length - 1; i >= 0; i--) {
    const name = inside[i] ?? '';
    if (targets.has(name)) return i;
    if (barrier(name)) return undefined;
  }
  if (targets.has(slot)) return 'slot';
  if (barrier(slot)) return undefined;
  return around ? 'around' : undefined;
}

const only = (name: string): ReadonlySet<string> => new Set([name]);

/**
 * What the start tag `tag` does inside a slot element `slot`, given the elements the browser
 * has open inside the slot (`inside`, outermost first) and the elements around the slot that
 * HTMLRewriter saw (`around`). All names lower case.
 */
export function startTagInSlot(
  tag: string,
  slot: string,
  inside: readonly string[],
  around: ReadonlySet<Enclosing>,
): StartTagEffect {
  let open = inside.length;
  /** Applies one pop: false when it reaches the slot (or may). */
  const pop = (found: Found): boolean => {
    if (found === 'slot' || found === 'around') return false;
    if (found !== undefined) open = Math.min(open, found);
    return true;
  };
  const current = () => (open > 0 ? (inside[open - 1] ?? '') : slot);
  const stack = () => inside.slice(0, open);

  // The list items walk down to the nearest item of their kind, through anything but special
  // elements other than address, div and p.
  const listItem =
    tag === 'li' ? only('li') : tag === 'dd' || tag === 'dt' ? new Set(['dd', 'dt']) : undefined;
  if (listItem) {
    const walk = (name: string) => SPECIAL.has(name) && name !== 'address' && name !== 'div' && name !== 'p';
    const around_ = [...listItem].some((name) => around.has(name as Enclosing));
    if (!pop(search(listItem, walk, slot, stack(), around_))) return ENDS;
  }
  if (CLOSES_P.has(tag)) {
    // A slot whose own start tag closes paragraphs has none open around it.
    const aroundP = around.has('p') && !CLOSES_P.has(slot);
    if (!pop(search(only('p'), (name) => BUTTON_SCOPE.has(name), slot, stack(), aroundP))) return ENDS;
  }
  if (HEADINGS.has(tag) && HEADINGS.has(current())) {
    if (open === 0) return ENDS;
    open -= 1;
  }
  if (tag === 'a' || tag === 'nobr') {
    // The adoption agency closes the open `<a>` (or `<nobr>`) before a new one.
    const found = search(only(tag), () => false, slot, stack(), around.has(tag));
    if (!pop(found)) return ENDS;
  }
  if (tag === 'button') {
    if (!pop(search(only('button'), (name) => SCOPE.has(name), slot, stack(), around.has('button'))))
      return ENDS;
  }
  let ignored = false;
  if (TABLE_PARTS.has(tag) || tag === 'table') {
    const table = stack().lastIndexOf('table');
    if (table >= 0) {
      // A table inside the slot: whatever this closes is inside that table.
      open = Math.min(open, tag === 'table' ? table : table + 1);
    } else {
      const effect = tableTag(tag, slot, around.has('table'));
      if (effect === 'ends') return ENDS;
      ignored = effect === 'ignored';
    }
  }
  if (slot === 'option' || slot === 'optgroup') {
    // A select's option ends at the next option, optgroup or hr; input, textarea and
    // another select end the select itself.
    const ends = slot === 'option' ? ['option', 'optgroup', 'hr'] : ['optgroup', 'hr'];
    if ([...ends, 'input', 'keygen', 'textarea', 'select'].includes(tag)) return ENDS;
  } else if (tag === 'option' || tag === 'optgroup') {
    if (current() === 'option' && open > 0) open -= 1;
  }
  if (RUBY.has(tag)) {
    // Implied end tags pop ruby parts (and list items, paragraphs, options) from the current node down.
    const keep = tag === 'rp' || tag === 'rt' ? 'rtc' : undefined;
    const pops = (name: string) => IMPLIED_END.has(name) && name !== keep;
    while (open > 0 && pops(current())) open -= 1;
    if (open === 0 && pops(slot)) return ENDS;
  }
  return { endsSlot: false, closes: inside.length - open, ignored };
}

/** What a table tag does in a slot element `slot` with no table open inside it. */
function tableTag(tag: string, slot: string, inTable: boolean): 'nests' | 'ignored' | 'ends' {
  const nestsIf = (nests: boolean) => (nests ? 'nests' : 'ends');
  switch (slot) {
    case 'table':
      return nestsIf(TABLE_PARTS.has(tag));
    case 'tbody':
    case 'thead':
    case 'tfoot':
      return nestsIf(tag === 'tr' || tag === 'td' || tag === 'th');
    case 'tr':
      return nestsIf(tag === 'td' || tag === 'th');
    case 'td':
    case 'th':
      return nestsIf(tag === 'table');
    case 'caption':
    case 'colgroup':
      return 'ends';
    default:
      // In a table, these close the cell or row around the slot, and the slot with it (a
      // new table nests in a cell, but closes a table the slot sits in directly: which one,
      // the rewriter cannot tell). Outside tables a new table nests, the parts are dropped.
      if (inTable) return 'ends';
      return tag === 'table' ? 'nests' : 'ignored';
  }
}

/** Table structure: text and elements other than table parts inside it are moved out, before the table. */
const TABLE_STRUCTURE = new Set(['table', 'thead', 'tbody', 'tfoot', 'tr', 'colgroup']);

/**
 * Whether a slot element can hold content the way HTMLRewriter sees it. Not when the browser
 * drops its start tag (a table part outside any table, anything but an option in a select),
 * and not when it moves content out of it (table structure, a form in a table): what
 * HTMLRewriter takes for the slot's content is then the page's.
 */
export function holdsContent(slot: string, around: ReadonlySet<Enclosing>): boolean {
  if (around.has('select')) return slot === 'option' || slot === 'optgroup';
  if (TABLE_STRUCTURE.has(slot) || (slot === 'form' && around.has('table'))) return false;
  return !TABLE_PARTS.has(slot) || around.has('table');
}

/**
 * Formatting elements: one left open (not closed by its own end tag) stays on the browser's
 * list of active formatting elements after an enclosing element closes it, and is reopened
 * for the content that follows, after the slot too.
 */
const FORMATTING = new Set([
  'a',
  'b',
  'big',
  'code',
  'em',
  'font',
  'i',
  'nobr',
  's',
  'small',
  'strike',
  'strong',
  'tt',
  'u',
]);

export function isFormatting(name: string): boolean {
  return FORMATTING.has(name);
}

/** Whether an element is of the "special" category: one the adoption agency moves content around. */
export function isSpecial(name: string): boolean {
  return SPECIAL.has(name);
}

/**
 * Whether the browser may move content removed from a slot out of it where the slot ends:
 * the adoption agency runs for a formatting element (the slot's own end tag, an enclosing
 * one's, or a new `<a>`/`<nobr>` start tag) while a block element that started in the slot
 * has not been closed by its end tag, and moves that block (and what it holds) out. Then
 * what was removed goes back, and the browser does the same with it.
 */
export function adoptionMovesContent(
  tag: { start: string } | { end: string },
  unclosed: readonly string[],
): boolean {
  const adoption = 'start' in tag ? tag.start === 'a' || tag.start === 'nobr' : FORMATTING.has(tag.end);
  return adoption && unclosed.some((name) => SPECIAL.has(name));
}
