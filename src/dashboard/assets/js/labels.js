// Map labels that never cover one another: each label, in order of importance, takes the
// first free place beside its symbol (right, left, above, below) and is left out when none is
// free. `placeLabels` is pure geometry on screen boxes; `declutter` measures the map's labels
// and applies its answer.

/** Radius on screen of each kind of symbol, for placing labels around it. */
const SYMBOL_R = { vehicle: 12, bcp: 6, office: 5 };
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
 * label size, lower rank placed first) wholly inside `view` ({w, h}). Answers, in the order given,
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
    const within = (c) => c.x >= 0 && c.y >= 0 && c.x + c.w <= view.w && c.y + c.h <= view.h;
    const box = candidates(item).find((c) => within(c) && !taken.some((t) => overlaps(c, t))
      && !symbols.some((sym, j) => sym && j !== i && overlaps(c, sym)));
    if (box) {
      taken.push(box);
      placed[i] = box;
    }
  }
  return placed;
}

/** The label's size on screen, measured once (labels keep their size at any zoom). */
function sizeOf(labelEl) {
  if (!labelEl.dataset.w) {
    const box = labelEl.getBBox();
    Object.assign(labelEl.dataset, { bx: box.x, by: box.y, w: box.width, h: box.height });
  }
  const d = labelEl.dataset;
  return { bx: Number(d.bx), by: Number(d.by), w: Number(d.w), h: Number(d.h) };
}

/**
 * Shows each label of `svg` (groups marked data-label-rank, anchored at data-x, data-y and
 * scaled by `u` map units per pixel) where it covers no other label or symbol.
 */
export function declutter(svg, v, u) {
  const box = svg.getBoundingClientRect();
  if (!box.width) return;
  // The viewBox is centred in the element ('meet'): screen = centre + (map − centre) / u.
  const cx = v.x + v.w / 2; const cy = v.y + v.h / 2;
  const groups = [...svg.querySelectorAll('[data-label-rank]')];
  const items = [];
  const labels = [];
  for (const g of groups) {
    const labelEl = g.querySelector('.map-label');
    if (!labelEl) continue;
    labelEl.classList.remove('label-hidden');
    const size = sizeOf(labelEl);
    const kind = g.classList.contains('vehicle') ? 'vehicle' : (g.classList.contains('bcp-place') ? 'bcp' : 'office');
    items.push({
      x: box.width / 2 + (Number(g.dataset.x) - cx) / u,
      y: box.height / 2 + (Number(g.dataset.y) - cy) / u,
      r: g.dataset.country ? 0 : SYMBOL_R[kind],
      w: size.w, h: size.h, rank: Number(g.dataset.labelRank), centred: Boolean(g.dataset.country),
    });
    labels.push({ labelEl, size, item: items[items.length - 1] });
  }
  const placed = placeLabels(items, { w: box.width, h: box.height });
  labels.forEach(({ labelEl, size, item }, i) => {
    const at = placed[i];
    if (!at) {
      labelEl.classList.add('label-hidden');
      return;
    }
    labelEl.setAttribute('transform', `translate(${(at.x - item.x - size.bx).toFixed(1)},${(at.y - item.y - size.by).toFixed(1)})`);
  });
}
