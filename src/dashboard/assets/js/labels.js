// Map labels that never cover one another: each label, in order of importance, takes the
// first free place beside its symbol (right, left, above, below) and is left out when none is
// free. Pure geometry on screen boxes; map.js measures and applies.

/** Pixels between a symbol and its label. */
const GAP = 3;

function overlaps(a, b) {
  return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
}

/** The boxes a label of size w×h may take around a symbol of radius r at (x, y). */
function candidates({ x, y, r, w, h, centred }) {
  if (centred) return [{ x: x - w / 2, y: y - h / 2, w, h }];
  const d = r + GAP;
  return [
    { x: x + d, y: y - h / 2, w, h },
    { x: x - d - w, y: y - h / 2, w, h },
    { x: x - w / 2, y: y - d - h, w, h },
    { x: x - w / 2, y: y + d, w, h },
  ];
}

/**
 * Places `items` ({x, y, r, w, h, rank, centred}: anchor and symbol radius in screen pixels,
 * label size, lower rank placed first) inside `view` ({w, h}). Answers, in the order given,
 * the box each label takes, or null for a label left out. Symbols are obstacles for every
 * label but their own.
 */
export function placeLabels(items, view) {
  const symbols = items.map((it) => (it.r > 0 ? { x: it.x - it.r, y: it.y - it.r, w: 2 * it.r, h: 2 * it.r } : null));
  const taken = [];
  const placed = new Array(items.length).fill(null);
  const order = items.map((_, i) => i).sort((a, b) => items[a].rank - items[b].rank || a - b);
  for (const i of order) {
    const item = items[i];
    const inside = item.x >= 0 && item.y >= 0 && item.x <= view.w && item.y <= view.h;
    if (!inside) continue;
    const box = candidates(item).find((c) => !taken.some((t) => overlaps(c, t))
      && !symbols.some((sym, j) => sym && j !== i && overlaps(c, sym)));
    if (box) {
      taken.push(box);
      placed[i] = box;
    }
  }
  return placed;
}
