import { describe, expect, it } from 'vitest';
import { type FilledSlot, MAX_PAGE_SLOTS, rewriteSlots, slotTagStart } from './index.ts';

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const bytes = (text: string) => encoder.encode(text);

/** An origin body that hands over all of `parts` at once (as a fast origin or a cache would). */
function originResponse(parts: string[]): Response {
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const part of parts) controller.enqueue(bytes(part));
      controller.close();
    },
  });
  return new Response(body, { headers: { 'content-type': 'text/html; charset=utf-8' } });
}

function held<T>() {
  let release: (value: T) => void = () => undefined;
  const promise = new Promise<T>((resolve) => {
    release = resolve;
  });
  return { promise, release };
}

async function readUntil(reader: ReadableStreamDefaultReader<Uint8Array>, text: string, start = '') {
  let received = start;
  while (!received.includes(text)) {
    const { value, done } = await reader.read();
    if (done) return received;
    received += decoder.decode(value, { stream: true });
  }
  return received;
}

const HEAD = '<!doctype html><html><head><title>Jacket</title><link rel="stylesheet" href="/s.css"></head>\n';
const ABOVE = '<body><header><a href="/">Shop</a></header>\n';
const SLOT = '<section class="slot" data-attune-slot="hero"><h1>Origin hero</h1></section>';
const BELOW = '<main><p>Product text</p></main></body></html>';
const FILLED: FilledSlot = { html: '<h1>For you</h1>', variant: 'v1', decisionId: 'd1' };

describe('rewriteSlots: the page above a slot does not wait for the decision', () => {
  it('sends everything before the first slot while the decision is held back, then fills the slot', async () => {
    const decision = held<FilledSlot | null>();
    const res = rewriteSlots(originResponse([HEAD + ABOVE + SLOT + BELOW]), () => decision.promise, {
      // Far away: without the hold before the slot, the first read below would not return
      // until the decision is released (the test would time out).
      deadline: Date.now() + 60_000,
      decided: decision.promise,
    });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const above = await readUntil(reader, '</header>');
    expect(above).toContain(HEAD);
    expect(above).not.toContain('data-attune-slot');
    decision.release(FILLED);
    const page = await readUntil(reader, '</html>', above);
    expect(page).toBe(
      `${HEAD}${ABOVE}<section class="slot" data-attune-slot="hero" data-attune-variant="v1" data-attune-decision="d1"><h1>For you</h1></section>${BELOW}`,
    );
  });

  it('also when the slot’s start tag is split across two chunks of the origin body', async () => {
    const decision = held<FilledSlot | null>();
    const whole = HEAD + ABOVE + SLOT + BELOW;
    const cut = whole.indexOf('data-attune-slot') + 'data-at'.length;
    const res = rewriteSlots(
      originResponse([whole.slice(0, cut), whole.slice(cut)]),
      () => decision.promise,
      {
        deadline: Date.now() + 60_000,
        decided: decision.promise,
      },
    );
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const above = await readUntil(reader, '</header>');
    expect(above).not.toContain('<section');
    decision.release(null);
    // No content for the slot: the origin's page, byte for byte.
    expect(await readUntil(reader, '</html>', above)).toBe(whole);
  });

  it('also when the slot attribute follows a quoted value with no space between', async () => {
    const decision = held<FilledSlot | null>();
    const slot = '<section class="slot"data-attune-slot="hero"><h1>Origin hero</h1></section>';
    const res = rewriteSlots(originResponse([HEAD + ABOVE + slot + BELOW]), () => decision.promise, {
      deadline: Date.now() + 60_000,
      decided: decision.promise,
    });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const above = await readUntil(reader, '</header>');
    expect(above).not.toContain('<section');
    decision.release(FILLED);
    expect(await readUntil(reader, '</html>', above)).toContain('<h1>For you</h1>');
  });

  it('lets the rest of the page through with the default when the decision misses the deadline', async () => {
    const never = new Promise<FilledSlot | null>(() => undefined);
    const whole = HEAD + ABOVE + SLOT + BELOW;
    const res = rewriteSlots(originResponse([whole]), () => never, {
      deadline: Date.now() + 5,
      decided: never,
    });
    expect(await res.text()).toBe(whole);
  });

  it('fills slots without holding anything when the decision is already known', async () => {
    const res = rewriteSlots(originResponse([HEAD + ABOVE + SLOT + BELOW]), () => FILLED, {
      deadline: Date.now() + 60_000,
      decided: Promise.resolve(),
    });
    expect(await res.text()).toContain('data-attune-variant="v1" data-attune-decision="d1"><h1>For you</h1>');
  });
});

describe('rewriteSlots: a page in a charset HTMLRewriter cannot parse', () => {
  it('returns the page as it came, at once, instead of throwing or holding it for a decision', async () => {
    const page = `${HEAD}${ABOVE}${SLOT}${BELOW}`;
    const origin = originResponse([page]);
    origin.headers.set('content-type', 'text/html; charset=x-unknown');
    // A decision that never comes and a distant deadline: a body held before the slot would
    // not arrive before the test times out.
    const decision = held<FilledSlot | null>();
    const res = rewriteSlots(origin, () => decision.promise, {
      deadline: Date.now() + 60_000,
      decided: decision.promise,
    });
    expect(res.headers.get('content-type')).toBe('text/html; charset=x-unknown');
    expect(await res.text()).toBe(page);
  });
});

describe('rewriteSlots: slot content in a page of any charset', () => {
  it('goes in as ASCII, its other characters as references to their code points', async () => {
    const filled = { ...FILLED, html: '<h1>Café 5 € — 登山靴 🥾</h1>' };
    // The page may be in another charset than its header names (one only its <meta> declares).
    const res = rewriteSlots(originResponse([HEAD + ABOVE + SLOT + BELOW]), () => filled, {
      deadline: Date.now() + 60_000,
    });
    const page = await res.text();
    expect(page).toContain('<h1>Caf&#233; 5 &#8364; &#8212; &#30331;&#23665;&#38772; &#129406;</h1>');
  });

  it('leaves the text of its <script> and <style> as written: a browser reads no references there', async () => {
    const raw =
      '<style>.promo::before { content: "→ "; }</style><script type="application/ld+json">{"name":"Café"}</script>';
    const filled = { ...FILLED, html: `${raw}<p class="kiosk">Café</p>` };
    const res = rewriteSlots(originResponse([HEAD + ABOVE + SLOT + BELOW]), () => filled, {
      deadline: Date.now() + 60_000,
    });
    expect(await res.text()).toContain(`${raw}<p class="kiosk">Caf&#233;</p>`);
  });

  it('drops the C1 controls, whose references a browser reads as windows-1252 characters (`&#128;` as €)', async () => {
    // Text pasted from a mis-decoded document carries them (`\u0080`, `\u0085`, `\u009f`).
    const filled = { ...FILLED, html: '<p>Price\u0080 5\u0085 \u009fÿ \u00a0€</p>' };
    const res = rewriteSlots(originResponse([HEAD + ABOVE + SLOT + BELOW]), () => filled, {
      deadline: Date.now() + 60_000,
    });
    expect(await res.text()).toContain('<p>Price 5 &#255; &#160;&#8364;</p>');
  });

  it('ends a <script> or <style> only at its own end tag, as a browser does', async () => {
    const raw =
      '<script>document.title = "</style> → ";</script><STYLE>b::after { content: "</script> →"; }</style>';
    const filled = { ...FILLED, html: `${raw}<p>→</p>` };
    const res = rewriteSlots(originResponse([HEAD + ABOVE + SLOT + BELOW]), () => filled, {
      deadline: Date.now() + 60_000,
    });
    expect(await res.text()).toContain(`${raw}<p>&#8594;</p>`);
  });

  it('takes a custom element whose name starts with style or script for text, not a style or script', async () => {
    const html =
      '<style-guide>→</style-guide><script-note>→</script-note><style>b::after { content: "→"; }</style>';
    const filled = { ...FILLED, html };
    const res = rewriteSlots(originResponse([HEAD + ABOVE + SLOT + BELOW]), () => filled, {
      deadline: Date.now() + 60_000,
    });
    expect(await res.text()).toContain(
      '<style-guide>&#8594;</style-guide><script-note>&#8594;</script-note><style>b::after { content: "→"; }</style>',
    );
  });
});

describe('rewriteSlots: a page with more slots than any page needs', () => {
  it('fills the first MAX_PAGE_SLOTS and leaves the rest as the origin sent them', async () => {
    const asked: string[] = [];
    const slots = Array.from(
      { length: MAX_PAGE_SLOTS + 5 },
      (_, i) => `<div data-attune-slot="s${i}">d${i}</div>`,
    );
    const res = rewriteSlots(
      originResponse([HEAD + ABOVE + slots.join('') + BELOW]),
      (request) => {
        asked.push(request.slot);
        return FILLED;
      },
      { deadline: Date.now() + 60_000 },
    );
    const html = await res.text();
    expect(asked).toHaveLength(MAX_PAGE_SLOTS);
    expect(html.match(/<h1>For you<\/h1>/g)).toHaveLength(MAX_PAGE_SLOTS);
    expect(html).toContain(`<div data-attune-slot="s${MAX_PAGE_SLOTS}">d${MAX_PAGE_SLOTS}</div>`);
  });
});

describe('slotTagStart', () => {
  const none = new Uint8Array(0);
  it('finds the start tag of the first slot attribute, in any case', () => {
    expect(slotTagStart(bytes('<p>a</p><div class="x" data-attune-slot="hero">'), none)).toBe(8);
    expect(slotTagStart(bytes('<p>a</p><DIV DATA-ATTUNE-SLOT=hero>'), none)).toBe(8);
    expect(slotTagStart(bytes('<p>a</p><div\ndata-attune-slot>'), none)).toBe(8);
    // No space after a quoted value: a parse error, but browsers and HTMLRewriter read the attribute.
    expect(slotTagStart(bytes('<p>a</p><div class="x"data-attune-slot>'), none)).toBe(8);
    expect(slotTagStart(bytes("<p>a</p><div class='x'data-attune-slot>"), none)).toBe(8);
  });

  it('ignores the name where it is not an attribute', () => {
    expect(slotTagStart(bytes('<script>q("[data-attune-slot=hero]")</script>'), none)).toBe(-1);
    expect(slotTagStart(bytes('<p>no slots here</p>'), none)).toBe(-1);
    expect(slotTagStart(bytes('<script>el.getAttribute("data-attune-slot")</script>'), none)).toBe(-1);
  });

  it('answers 0 when the tag began in the previous chunk', () => {
    expect(slotTagStart(bytes('attune-slot="hero">'), bytes('<section data-'))).toBe(0);
    expect(slotTagStart(bytes('data-attune-slot="hero">'), bytes('<section '))).toBe(0);
    expect(slotTagStart(bytes('="hero">'), bytes('<section data-attune-slot'))).toBe(0);
  });
});

describe('rewriteSlots: a filled slot ends where the browser ends it', () => {
  const NEW: FilledSlot = { html: '<i>new</i>', variant: 'v', decisionId: 'd' };
  const MARK = 'data-attune-variant="v" data-attune-decision="d"';
  /** The page rewritten with every slot filled, the decision known or still coming. */
  const fill = (page: string, known: boolean) =>
    rewriteSlots(
      new Response(page, { headers: { 'content-type': 'text/html' } }),
      () => (known ? NEW : Promise.resolve(NEW)),
      { deadline: Date.now() + 60_000 },
    ).text();
  const cases: [string, string, string][] = [
    [
      'a paragraph ends at the next one',
      '<p data-attune-slot="promo">Default<p>Next para</p><footer>F</footer>',
      `<p data-attune-slot="promo" ${MARK}><i>new</i><p>Next para</p><footer>F</footer>`,
    ],
    [
      'a list item ends at the next one',
      '<ul><li data-attune-slot="hero">one<li>two<li>three</ul><footer>',
      `<ul><li data-attune-slot="hero" ${MARK}><i>new</i><li>two<li>three</ul><footer>`,
    ],
    [
      'the slot’s end tag also closes an unclosed element inside it',
      '<div data-attune-slot="hero"><p>Default text</div><footer>',
      `<div data-attune-slot="hero" ${MARK}><i>new</i></div><footer>`,
    ],
    [
      'a slot whose end tag is missing gets its default back where the page closes it',
      '<html><body><div data-attune-slot="hero"/><main>M</main></body></html>',
      `<html><body><div data-attune-slot="hero" ${MARK}><i>new</i><main>M</main></body></html>`,
    ],
    [
      'a slot never closed gets its default back at the end of the page',
      '<div data-attune-slot="hero"/><main>M</main>',
      `<div data-attune-slot="hero" ${MARK}><i>new</i><main>M</main>`,
    ],
    [
      'a slot closed only by an enclosing end tag gets its default back there',
      '<section><div data-attune-slot="a"/><p>M</p></section><p>after</p>',
      `<section><div data-attune-slot="a" ${MARK}><i>new</i><p>M</p></section><p>after</p>`,
    ],
    [
      'paragraphs that end each other inside the slot',
      '<div data-attune-slot="a"><p>a<p>b</div><p>after</p>',
      `<div data-attune-slot="a" ${MARK}><i>new</i></div><p>after</p>`,
    ],
    [
      'an element the next list item closes keeps the list’s end tag',
      '<ul><li data-attune-slot="a"><p>one<li>two</ul><p>after</p>',
      `<ul><li data-attune-slot="a" ${MARK}><i>new</i><li>two</ul><p>after</p>`,
    ],
    [
      'a formatting element left open is reopened after the slot, and keeps its end tag',
      '<ul><li data-attune-slot="a"><b>one<li>two</b>three</ul>',
      `<ul><li data-attune-slot="a" ${MARK}><i>new</i><b><li>two</b>three</ul>`,
    ],
    [
      'a table cell ends at the next one',
      '<table><tr><td data-attune-slot="a">x<td>y</tr></table>',
      `<table><tr><td data-attune-slot="a" ${MARK}><i>new</i><td>y</tr></table>`,
    ],
    [
      'an option ends at the next one',
      '<select><option data-attune-slot="a">x<option>y</select>',
      `<select><option data-attune-slot="a" ${MARK}><i>new</i><option>y</select>`,
    ],
    [
      'a heading ends at the next heading',
      '<h2 data-attune-slot="a">x<h3>y</h3>',
      `<h2 data-attune-slot="a" ${MARK}><i>new</i><h3>y</h3>`,
    ],
    [
      'a block inside an inline slot ends the paragraph around it, and the slot',
      '<p><span data-attune-slot="a">x<div>block</div>y</span></p>',
      `<p><span data-attune-slot="a" ${MARK}><i>new</i><div>block</div>y</span></p>`,
    ],
    [
      'a block inside an inline slot outside paragraphs is the slot’s',
      '<a data-attune-slot="a" href="/x"><div>card</div></a><p>after</p>',
      `<a data-attune-slot="a" href="/x" ${MARK}><i>new</i></a><p>after</p>`,
    ],
    [
      'a slot that ends the one being filled is filled itself',
      '<p data-attune-slot="a">x<p data-attune-slot="b">y</p><p>after</p>',
      `<p data-attune-slot="a" ${MARK}><i>new</i><p data-attune-slot="b" ${MARK}><i>new</i></p><p>after</p>`,
    ],
    [
      'a slot the page never closes gets its default back at the end, even a paragraph',
      '<main>M</main><p data-attune-slot="a">Default',
      `<main>M</main><p data-attune-slot="a" ${MARK}><i>new</i>Default`,
    ],
  ];
  for (const [what, page, expected] of cases) {
    it(what, async () => {
      expect(await fill(page, true)).toBe(expected);
      expect(await fill(page, false)).toBe(expected);
    });
  }
});

describe('rewriteSlots: misnested formatting tags in a slot’s default leave the page after it as the origin’s', () => {
  // Each expected page was checked with an HTML5 parser (parse5): what follows the slot
  // parses as it does in the origin's page (no italic, no link, the bold that is carried on).
  const NEW: FilledSlot = { html: '<b>NEW</b>', variant: 'v', decisionId: 'd' };
  const SLOT_START =
    '<div data-attune-slot="hero" data-attune-variant="v" data-attune-decision="d"><b>NEW</b>';
  const fill = (page: string, known: boolean) =>
    rewriteSlots(
      new Response(page, { headers: { 'content-type': 'text/html' } }),
      () => (known ? NEW : Promise.resolve(NEW)),
      { deadline: Date.now() + 60_000 },
    ).text();
  const cases: [string, string, string][] = [
    [
      'an <i> closed by </b> and then by its own end tag is not carried past the slot',
      '<div data-attune-slot="hero"><b><i>a</b>c</i></div><p>after</p>',
      `${SLOT_START}<i></i></div><p>after</p>`,
    ],
    [
      'nor when a non-formatting end tag closed it first',
      '<div data-attune-slot="hero"><span><i>a</span>c</i></div><p>after</p>',
      `${SLOT_START}<i></i></div><p>after</p>`,
    ],
    [
      'nor several of them',
      '<div data-attune-slot="hero"><b><i><u>a</b>c</u></i></div><p>after</p>',
      `${SLOT_START}<i><u></u></i></div><p>after</p>`,
    ],
    [
      'nor when its end tag comes after a block that ends a paragraph slot',
      '<p data-attune-slot="hero"><b><i>a</b>c</i><div>x</div><p>after</p>',
      '<p data-attune-slot="hero" data-attune-variant="v" data-attune-decision="d"><b>NEW</b><i></i><div>x</div><p>after</p>',
    ],
    [
      'an <i> that the page leaves open is still carried past the slot, as the browser does',
      '<div data-attune-slot="hero"><b><i>a</b>c</div><p>after</p>',
      `${SLOT_START}<i></div><p>after</p>`,
    ],
    [
      'a link a second link closed is not reopened after the slot',
      '<div data-attune-slot="hero"><a href=x>a<a href=y>b</a></div><p>after</p><p>more</p>',
      `${SLOT_START}</div><p>after</p><p>more</p>`,
    ],
    [
      'nor a <nobr> a second one closed',
      '<div data-attune-slot="hero"><nobr>a<nobr>b</nobr></div><p>after</p>',
      `${SLOT_START}</div><p>after</p>`,
    ],
    [
      'a bold left open inside the closed link still is',
      '<div data-attune-slot="hero"><a href=x><b>a<a href=y>b</a></div><p>after</p>',
      `${SLOT_START}<b></div><p>after</p>`,
    ],
    [
      'and one closed by its end tag is not',
      '<div data-attune-slot="hero"><a href=x><b>a<a href=y>b</a></b></div><p>after</p>',
      `${SLOT_START}</div><p>after</p>`,
    ],
    [
      'an <em> reopened inside a slot that sits in an <em> is closed before the default comes back',
      '<em><div data-attune-slot="hero"><b><em>Sale</b> now</em></div></em><p>after</p>',
      '<em><div data-attune-slot="hero" data-attune-variant="v" data-attune-decision="d"><b>NEW</b><em></em><b><em>Sale</b> now</em></div></em><p>after</p>',
    ],
    [
      'an <i> likewise, in an <i>',
      '<i><div data-attune-slot="hero"><b><i>a</b>c</i></div></i><p>after</p>',
      '<i><div data-attune-slot="hero" data-attune-variant="v" data-attune-decision="d"><b>NEW</b><i></i><b><i>a</b>c</i></div></i><p>after</p>',
    ],
    [
      'a <b> reopened inside a span slot that sits in a <b>',
      '<b><span data-attune-slot="hero"><i><b>New</i> in</b></span> text</b><p>after</p>',
      '<b><span data-attune-slot="hero" data-attune-variant="v" data-attune-decision="d"><b>NEW</b><b></b><i><b>New</i> in</b></span> text</b><p>after</p>',
    ],
    [
      'a link an end tag closed, then a second link, is closed and not reopened',
      '<div data-attune-slot="hero"><b><a href=x>a</b>c<a href=y>d</a></div><p>after</p>',
      `${SLOT_START}<a href="x"></a></div><p>after</p>`,
    ],
    [
      'also when a <span> closed it',
      '<div data-attune-slot="hero"><span><a href=x>a</span><a href=y>b</a></div><p>after</p>',
      `${SLOT_START}<a href="x"></a></div><p>after</p>`,
    ],
    [
      'and a <nobr>',
      '<div data-attune-slot="hero"><b><nobr>a</b>c<nobr>d</nobr></div><p>after</p>',
      `${SLOT_START}<nobr></nobr></div><p>after</p>`,
    ],
    [
      'an <i> a table cell closed is not reopened',
      '<div data-attune-slot="hero"><table><tr><td><i>a</td><td>b</td></tr></table></div><p>after</p>',
      `${SLOT_START}</div><p>after</p>`,
    ],
    [
      'nor one reopened inside the cell',
      '<div data-attune-slot="hero"><table><tr><td><b><i>a</b>c</td></tr></table></div><p>after</p>',
      `${SLOT_START}<i></i></div><p>after</p>`,
    ],
  ];
  for (const [what, page, expected] of cases) {
    it(what, async () => {
      expect(await fill(page, true)).toBe(expected);
      expect(await fill(page, false)).toBe(expected);
    });
  }
});
