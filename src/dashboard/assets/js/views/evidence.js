// A transit's evidence: the bundle to download for another authority, and whether the record
// checks against its signed checkpoint (checked by this server; an authority checks the file
// itself with `caravan audit verify-bundle FILE --key PUBKEY`).

import * as api from '/assets/js/api.js';
import { t } from '/assets/js/i18n.js';
import { h, errorBox } from '/assets/js/format.js';

export function evidenceSection(id) {
  const path = `/api/v1/transits/${encodeURIComponent(id)}/evidence`;
  const verdict = h('div', { role: 'status' }, h('p', { class: 'muted' }, t('loading')));
  const download = h('button', { type: 'button', class: 'secondary', onclick: async () => {
    try {
      const bundle = await api.get(path);
      const url = URL.createObjectURL(new Blob([JSON.stringify(bundle)], { type: 'application/json' }));
      const link = h('a', { href: url, download: `evidence-${id}.json` });
      link.click();
      setTimeout(() => URL.revokeObjectURL(url), 1000);
    } catch (error) {
      verdict.replaceChildren(errorBox(error));
    }
  } }, t('evidence_download'));
  api.get(`${path}/check`).then((v) => {
    verdict.replaceChildren(
      h('p', { class: v.holds ? 'ok' : 'error' }, v.holds ? t('evidence_verifies') : t('evidence_broken')),
      h('ul', {}, [...v.broken, ...v.proven].map((line) => h('li', {}, line))));
  }).catch((error) => verdict.replaceChildren(errorBox(error)));
  return h('section', {}, h('h3', {}, t('evidence')), download, verdict);
}
