import type { SlotDecision } from '@attune/shared-schema';
import { describe, expect, it } from 'vitest';
import { renderDecision, safeUrl } from './render.ts';

describe('safeUrl', () => {
  it('keeps paths on the shop’s origin and absolute http(s) URLs', () => {
    expect(safeUrl('/images/boots.jpg')).toBe('/images/boots.jpg');
    expect(safeUrl(' /sale?x=1#top ')).toBe('/sale?x=1#top');
    expect(safeUrl('/%2F/evil.example/x')).toBe('/%2F/evil.example/x');
    expect(safeUrl('https://cdn.example/boots.jpg')).toBe('https://cdn.example/boots.jpg');
    expect(safeUrl('HTTP://cdn.example/x')).toBe('HTTP://cdn.example/x');
    expect(safeUrl(undefined)).toBe('');
  });

  it('drops paths a browser reads as another host', () => {
    for (const url of [
      '//evil.example/x',
      '/\\evil.example/x',
      '\\\\evil.example/x',
      '/\t/evil.example/x',
      '/\n/evil.example/x',
      '/\r/evil.example/x',
      '/\u0000/evil.example/x',
      '/\u007f/evil.example/x',
      '/ /evil.example/x',
      '/images\\x.jpg',
      'https:/\\evil.example/x',
      'https:\\\\evil.example/x',
      'https:///evil.example/x',
      'https://\tevil.example/x',
    ])
      expect(safeUrl(url), JSON.stringify(url)).toBe('');
  });

  it('drops other schemes and relative references', () => {
    for (const url of [
      'javascript:alert(1)',
      'data:image/png;base64,AAAA',
      'images/x.jpg',
      'mailto:a@b.c',
      '',
    ])
      expect(safeUrl(url), url).toBe('');
  });
});

describe('renderDecision', () => {
  const recommendations = (items: SlotDecision['items']): SlotDecision => ({
    slot: 'recommendations',
    decisionId: '01JDECISION0000000000000000',
    variant: 'default',
    kind: 'recommendations',
    title: 'Popular right now',
    ...(items ? { items } : {}),
    reason: 'popular right now',
    holdout: false,
  });

  it('renders nothing for recommendations without products (the slot keeps its default)', () => {
    expect(renderDecision(recommendations([]))).toBeNull();
    expect(renderDecision(recommendations(undefined))).toBeNull();
  });

  const boots = (image: string) =>
    renderDecision(
      recommendations([
        {
          id: 'boots',
          slug: 'boots',
          title: 'Boots',
          category: 'outdoor',
          price: 120,
          currency: 'EUR',
          image,
          reason: 'popular right now',
        },
      ]),
    ) ?? '';

  it('renders no picture for a catalog image pointing at another host', () => {
    const html = boots('/\\evil.example/boots.jpg');
    expect(html).not.toContain('<img');
    expect(html).toContain('Boots');
    expect(html).not.toContain('evil.example');
  });

  it('shows a product without an image (null in Directus) without a picture, not a broken image', () => {
    const html = boots('');
    expect(html).not.toContain('<img');
    expect(html).toContain('Boots');
    expect(boots('https://cdn.example/boots.jpg')).toContain('<img src="https://cdn.example/boots.jpg"');
  });
});
