/**
 * Writes products.jsonl: about 1,000 made-up furniture and home products, the same every time (a fixed
 * seed), for the product-attributes example. Run: npx tsx examples/product-attributes/make-products.ts [COUNT]
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const KINDS = [
  { noun: 'lamp', words: ['lamp', 'light'], detail: 'with a warm LED bulb and a fabric shade' },
  { noun: 'pendant light', words: ['pendant', 'light'], detail: 'that hangs over a dining table' },
  { noun: 'armchair', words: ['armchair', 'chair'], detail: 'with deep cushions and solid arms' },
  { noun: 'dining chair', words: ['chair'], detail: 'that stacks, for kitchens and cafés' },
  { noun: 'sofa', words: ['sofa'], detail: 'that seats three, with removable covers' },
  { noun: 'coffee table', words: ['table'], detail: 'with a low top and a shelf underneath' },
  { noun: 'desk', words: ['desk'], detail: 'with a cable tray and two drawers' },
  { noun: 'bookcase', words: ['bookcase', 'shelf'], detail: 'with five shelves, wall-mountable' },
  { noun: 'wardrobe', words: ['wardrobe'], detail: 'with sliding doors and a hanging rail' },
  { noun: 'rug', words: ['rug'], detail: 'that is hand-woven and easy to vacuum' },
  { noun: 'throw blanket', words: ['blanket', 'throw'], detail: 'that is soft and machine-washable' },
  { noun: 'saucepan', words: ['saucepan', 'pan'], detail: 'that works on induction hobs' },
  { noun: 'garden bench', words: ['bench', 'garden'], detail: 'that is weather-proof, for patios' },
  { noun: 'planter', words: ['planter', 'garden'], detail: 'with a drainage hole' },
  { noun: 'mirror', words: ['mirror'], detail: 'with a round glass and a thin frame' },
];
const MATERIALS = ['oak', 'walnut', 'pine', 'steel', 'brass', 'linen', 'wool', 'rattan', 'ceramic', 'glass', 'teak', 'cotton'];
const STYLES = ['Nordic', 'Classic', 'Compact', 'Studio', 'Grand', 'Mini', 'Loft', 'Coastal', 'Urban', 'Heritage'];
const BRANDS = ['Hallberg', 'Casa Nova', 'Northwood', 'Atelier 9', 'Brightline', 'Oakhouse'];

/** A small linear congruential generator: the same sequence on every machine. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

export function makeProducts(count: number): Array<Record<string, unknown>> {
  const next = random(20261124);
  const pick = <T>(list: T[]): T => list[Math.floor(next() * list.length)]!;
  return Array.from({ length: count }, (_, i) => {
    const kind = pick(KINDS);
    const material = pick(MATERIALS);
    const style = pick(STYLES);
    const price = Math.round((20 + next() * 980) * 100) / 100;
    return {
      id: `p${String(i + 1).padStart(4, '0')}`,
      title: `${style} ${material} ${kind.noun}`,
      description: `${/^[aeiou]/.test(material) ? 'An' : 'A'} ${material} ${kind.noun} ${kind.detail}.`,
      brand: pick(BRANDS),
      price,
    };
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const count = Number(process.argv[2] ?? 1000);
  const file = join(import.meta.dirname, 'products.jsonl');
  writeFileSync(file, makeProducts(count).map((p) => JSON.stringify(p)).join('\n') + '\n');
  process.stdout.write(`wrote ${count} products to ${file}\n`);
}
