/**
 * The demo catalog and content: ~200 products across categories (deterministic, so
 * every machine sees the same shop), slot content, trigger rules, consent categories
 * and the demo site. Images are local SVG paths the shop renders.
 */
import { DEFAULT_CONSENT_CONFIG } from '../../../packages/shared-schema/src/consent.ts';

const CATALOG = {
  outdoor: {
    jacket: [
      'Storm Shell Jacket',
      'Ridge Down Jacket',
      'Trail Softshell',
      'Alpine Hardshell',
      'Packable Rain Jacket',
      'Fleece Midlayer',
      'Insulated Parka',
      'Windbreaker',
    ],
    boots: [
      'Summit Hiking Boots',
      'Trail Runner Shoes',
      'Waterproof Mid Boots',
      'Approach Shoes',
      'Winter Snow Boots',
      'Light Hikers',
    ],
    tent: [
      'Two-Person Dome Tent',
      'Ultralight Trekking Tent',
      'Family Cabin Tent',
      'Four-Season Tent',
      'Bivy Shelter',
    ],
    backpack: ['Daypack 22L', 'Trekking Pack 45L', 'Expedition Pack 65L', 'Hydration Pack', 'Summit Bag'],
    sleeping: ['Down Sleeping Bag', 'Synthetic Sleeping Bag', 'Inflatable Sleeping Pad', 'Camp Pillow'],
    accessory: [
      'Merino Gloves',
      'Insulated Gloves',
      'Wool Beanie',
      'Fleece Beanie',
      'LED Headlamp',
      'Rechargeable Headlamp',
      'Trekking Poles',
      'Neck Gaiter',
      'Hiking Socks',
      'Water Filter',
      'Camp Stove',
      'Insulated Bottle',
    ],
  },
  kitchen: {
    cookware: [
      'Cast Iron Skillet',
      'Stainless Saucepan',
      'Nonstick Frying Pan',
      'Dutch Oven',
      'Wok',
      'Stock Pot',
    ],
    knives: ["Chef's Knife", 'Paring Knife', 'Bread Knife', 'Knife Block Set', 'Whetstone'],
    coffee: ['Pour-Over Kettle', 'French Press', 'Burr Grinder', 'Espresso Cups', 'Moka Pot'],
    tools: [
      'Wooden Spoons',
      'Silicone Spatula',
      'Measuring Cups',
      'Mixing Bowls',
      'Cutting Board',
      'Kitchen Scale',
    ],
  },
  electronics: {
    audio: ['Wireless Headphones', 'Bluetooth Speaker', 'Earbuds Pro', 'Studio Monitors', 'Portable DAC'],
    computing: [
      'Mechanical Keyboard',
      'Wireless Mouse',
      'USB-C Hub',
      'Laptop Stand',
      '27" Monitor',
      'Webcam HD',
    ],
    power: ['Power Bank 20000mAh', 'Solar Charger', 'GaN Charger 65W', 'Charging Cable Set'],
    smart: ['Smart Plug', 'Smart Bulb', 'Fitness Tracker', 'GPS Watch', 'E-Reader'],
  },
  books: {
    travel: ['Alpine Trails Guide', 'Coastal Walks', 'National Parks Atlas', 'Backpacking Basics'],
    cooking: ['The Cast Iron Cookbook', 'Coffee at Home', 'Weeknight Vegetables', 'Baking Bread'],
    fiction: ['The Long Ridge', 'Harbor Lights', 'Winter Orchard', 'The Last Cartographer', 'Salt and Pine'],
    tech: ['Edge Computing Patterns', 'Practical TypeScript', 'Designing Data Systems', 'Privacy by Design'],
  },
  home: {
    textiles: ['Linen Throw', 'Wool Blanket', 'Cotton Cushion', 'Bath Towel Set', 'Duvet Cover'],
    lighting: ['Desk Lamp', 'Floor Lamp', 'Candle Lantern', 'String Lights'],
    storage: ['Woven Basket', 'Shoe Rack', 'Wall Shelf', 'Storage Boxes'],
    plants: ['Ceramic Planter', 'Watering Can', 'Plant Stand', 'Herb Garden Kit'],
  },
};

const VARIANTS = ['', ' Pro', ' Lite'];
const PRICE_BASE = { outdoor: 89, kitchen: 39, electronics: 79, books: 18, home: 34 };
const EXTRA_TAGS = {
  jacket: ['waterproof', 'layering'],
  boots: ['hiking', 'footwear'],
  tent: ['camping', 'shelter'],
  backpack: ['hiking', 'carry'],
  sleeping: ['camping'],
  accessory: ['accessory'],
};

function slugify(s) {
  return s
    .toLowerCase()
    .replace(/"/g, 'in')
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '');
}

/** A small deterministic PRNG so the demo catalog is the same everywhere. */
function mulberry32(seed) {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function products() {
  const rand = mulberry32(42);
  const out = [];
  for (const [category, groups] of Object.entries(CATALOG)) {
    for (const [group, names] of Object.entries(groups)) {
      for (const name of names) {
        const variants = category === 'outdoor' ? VARIANTS : VARIANTS.slice(0, 1);
        for (const variant of variants) {
          const title = `${name}${variant}`;
          const slug = slugify(title);
          const lower = name.toLowerCase();
          const tags = [group, ...(EXTRA_TAGS[group] ?? [])];
          for (const t of ['gloves', 'beanie', 'headlamp', 'socks', 'poles'])
            if (lower.includes(t.replace(/s$/, ''))) tags.push(t);
          if (variant === ' Pro') tags.push('premium');
          if (variant === ' Lite') tags.push('lightweight');
          const price =
            Math.round(
              PRICE_BASE[category] *
                (0.5 + rand() * 1.5) *
                (variant === ' Pro' ? 1.6 : variant === ' Lite' ? 0.8 : 1) *
                100,
            ) / 100;
          out.push({
            id: `p-${slug}`,
            slug,
            title,
            category,
            tags: [...new Set(tags)],
            price,
            currency: 'EUR',
            image: `/images/products/${slug}.svg`,
            stock: Math.floor(rand() * 120),
            popularity: Math.round(rand() * 1000) / 1000,
            description: `${title}: a ${group} pick from our ${category} range.`,
          });
        }
      }
    }
  }
  return out;
}

export const SLOT_CONTENT = [
  {
    id: 'hero-default',
    slot: 'hero',
    kind: 'banner',
    title: 'Everything for your next adventure',
    body: 'New season, new gear — explore the shop.',
    image: '/images/banners/default.svg',
    href: '/',
    targetInterests: [],
    targetSegments: [],
    isDefault: true,
    priority: 0,
  },
  {
    id: 'hero-outdoor',
    slot: 'hero',
    kind: 'banner',
    title: 'Ready for the trail?',
    body: 'Waterproof jackets and boots for every summit.',
    image: '/images/banners/outdoor.svg',
    href: '/category/outdoor',
    targetInterests: ['category:outdoor'],
    targetSegments: [],
    isDefault: false,
    priority: 10,
  },
  {
    id: 'hero-kitchen',
    slot: 'hero',
    kind: 'banner',
    title: 'Cook like you mean it',
    body: 'Cast iron, sharp knives and slow coffee.',
    image: '/images/banners/kitchen.svg',
    href: '/category/kitchen',
    targetInterests: ['category:kitchen'],
    targetSegments: [],
    isDefault: false,
    priority: 10,
  },
  {
    id: 'hero-electronics',
    slot: 'hero',
    kind: 'banner',
    title: 'Gear that keeps up',
    body: 'Headphones, chargers and smart things.',
    image: '/images/banners/electronics.svg',
    href: '/category/electronics',
    targetInterests: ['category:electronics'],
    targetSegments: [],
    isDefault: false,
    priority: 10,
  },
  {
    id: 'hero-books',
    slot: 'hero',
    kind: 'banner',
    title: 'Stories for the long evenings',
    body: 'Guides, cookbooks and novels.',
    image: '/images/banners/books.svg',
    href: '/category/books',
    targetInterests: ['category:books'],
    targetSegments: [],
    isDefault: false,
    priority: 10,
  },
  {
    id: 'hero-returning-buyer',
    slot: 'hero',
    kind: 'banner',
    title: 'Welcome back',
    body: 'Thanks for shopping with us — here is what is new.',
    image: '/images/banners/welcome.svg',
    href: '/new',
    targetInterests: [],
    targetSegments: ['buyers'],
    isDefault: false,
    priority: 5,
  },
  {
    id: 'recs-default',
    slot: 'recommendations',
    kind: 'recommendations',
    title: 'Popular right now',
    body: 'What other shoppers love.',
    targetInterests: [],
    targetSegments: [],
    isDefault: true,
    priority: 0,
  },
  {
    id: 'recs-for-you',
    slot: 'recommendations',
    kind: 'recommendations',
    title: 'Picked for you',
    body: 'Based on what you browsed.',
    targetInterests: [
      'category:outdoor',
      'category:kitchen',
      'category:electronics',
      'category:books',
      'category:home',
    ],
    targetSegments: [],
    isDefault: false,
    priority: 10,
  },
  {
    id: 'promo-default',
    slot: 'promo',
    kind: 'promo',
    title: 'Free shipping over €50',
    body: 'On every order, every day.',
    href: '/shipping',
    targetInterests: [],
    targetSegments: [],
    isDefault: true,
    priority: 0,
  },
  {
    id: 'promo-outdoor-10',
    slot: 'promo',
    kind: 'promo',
    title: '10% off trail accessories',
    body: 'Gloves, beanies and headlamps to go with your jacket.',
    href: '/category/outdoor?tag=accessory',
    targetInterests: ['category:outdoor', 'tag:jacket'],
    targetSegments: [],
    isDefault: false,
    priority: 10,
  },
];

export const TRIGGER_RULES = [
  {
    id: 'jacket-accessories',
    enabled: true,
    on: 'cart.item.added',
    when: { category: 'outdoor', tags: ['jacket'] },
    recommend: { categories: ['outdoor'], tags: ['accessory'], limit: 4 },
    promo: { codePrefix: 'TRAIL10', discountPercent: 10, ttlHours: 48, capPerPerson: 1 },
  },
  {
    id: 'boots-socks',
    enabled: true,
    on: 'cart.item.added',
    when: { category: 'outdoor', tags: ['boots'] },
    recommend: { categories: ['outdoor'], tags: ['socks', 'poles'], limit: 3 },
  },
  {
    id: 'coffee-books',
    enabled: true,
    on: 'product.viewed',
    when: { category: 'kitchen', tags: ['coffee'] },
    recommend: { categories: ['books'], tags: ['cooking'], limit: 3 },
  },
];

// The demo offers exactly the built-in categories (shared-schema's default), in that order.
export const CONSENT_CATEGORIES = DEFAULT_CONSENT_CONFIG.categories.map((category, index) => ({
  ...category,
  sort: index + 1,
}));

export const SITES = [
  {
    id: 'demo',
    name: 'Attune demo shop',
    write_key: 'pk_demo_attune',
    allowed_origins: [
      'http://localhost:8787',
      'http://127.0.0.1:8787',
      'http://localhost:3000',
      'http://127.0.0.1:3000',
    ],
    // As wrangler.toml's ATTUNE_SITES configures the Worker: expiring identity signatures
    // (the shop makes them), and `buyers`, whom the seeded "Welcome back" hero targets, are
    // the people with an order.
    settings: {
      identity: { signatures: 'expiring' },
      segments: [{ id: 'buyers', minCounters: { orders: 1 } }],
    },
  },
];
