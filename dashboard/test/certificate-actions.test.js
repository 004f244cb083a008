// A signatory's actions on test reports (certificates) in a real headless Chromium against a real server: a draft
// of a completed run (measured by a signing test gateway) shows that nothing blocks it and is issued after a
// confirmation (the dashboard's dialog); a refusal (a draft whose instrument was never calibrated) shows the
// blockers and the refusal translated; the issued one is revoked with a reason the dialog requires, and the view
// says so; another is amended (a new report, the old one "amended by" it); a client sees the status and the
// downloads, never the actions; a signatory who performed the run is refused. A signatory in Shanghai, in Chinese,
// on a phone, issues a bilingual report: the question, the status and the times are in Chinese and in the zone,
// the view fits the phone, axe finds nothing serious, and the report is printed in the language chosen.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { pdfText, resultRows } from '../../server/dist/test/certificates/pdf-text.js';
import { ORGANIZATION, send, startServer, TestGateway, waitFor } from '../../server/dist/test/helpers/server.js';
import { call, launch, screenshot, signIn, WAIT } from './helpers/browser.js';
import { message, overflowing, PHONE, refusalText, seriousViolations, signInAs } from './helpers/records.js';

const DAY = 86_400_000;
let t;

/** the dashboard's confirmation dialog: its title and message; a reason typed when given; then confirmed */
async function confirm(page, reason) {
  const dialog = page.locator('[data-test="confirm-dialog"]');
  await dialog.waitFor({ state: 'visible', ...WAIT });
  const title = await dialog.locator('#confirm-title').innerText();
  const text =
    (await dialog.locator('[data-test="confirm-message"]').count()) > 0 ? await dialog.locator('[data-test="confirm-message"]').innerText() : '';
  if (reason !== undefined) {
    // the reason is required: the dialog does not confirm without it
    expect(await dialog.locator('[data-test="confirm-ok"]').isDisabled()).toBe(true);
    await dialog.locator('[data-test="confirm-reason"]').fill(reason);
  }
  await dialog.locator('[data-test="confirm-ok"]').click();
  return { title, text };
}
let gw;
let browser;
let seq = 0;

/** a run of the method on the instrument, started, measured and stopped by the technician */
async function completedRun(instrument) {
  const id = (await call(t, '/api/runs', { sample: 'B-1', method: 'tensile', instruments: [instrument] })).id;
  await call(t, `/api/runs/${id}/start`, {});
  const ts = Date.now();
  const samples = [10.2, 35.7, 42.031, 41.9, 0.4].map((value, i) => ({
    seq: seq++,
    instrument,
    channel: 'c',
    ts: ts + i,
    value,
    unit: 'kN',
    quality: 'good',
  }));
  expect(await send(t, gw, gw.sign(samples))).toBe('acked');
  await call(t, `/api/runs/${id}/stop`, {});
  return id;
}

beforeAll(async () => {
  t = await startServer({
    accreditation: {
      accreditations: [
        {
          id: 'acc-1',
          body: 'CNAS',
          number: 'L1234',
          validFrom: '2020-01-01',
          validTo: Date.now() + 365 * DAY,
          scope: [{ standard: 'ISO 6892-1:2019', measurand: 'force', unit: 'kN', min: 0, max: 100 }],
        },
      ],
    },
    publicBaseUrl: 'https://reports.lab.example',
  });
  gw = await TestGateway.connect(t, 'gw-a');
  await gw.birth('utm-1', 'utm-2');
  await waitFor('the instruments', () => t.server.database.sqlite.prepare('SELECT COUNT(*) AS n FROM instruments').get().n === 2);
  const now = Date.now();
  // utm-1 is calibrated; utm-2 never was, so a certificate of its run cannot state traceability
  await call(t, '/api/instruments/utm-1/calibrations', {
    calibratedAt: now - 10 * DAY,
    laboratory: 'Reference Lab',
    certificate: 'CAL-utm-1',
    results: [{ point: 'p1', reference: 10, indication: 10.01, unit: 'kN' }],
    uncertainty: { value: 0.1, unit: 'kN', k: 2 },
    nextDueAt: now + 300 * DAY,
  });
  await call(t, '/api/lab-samples', {
    id: 'B-1',
    organization: ORGANIZATION,
    description: 'steel bar B500B, 10 mm',
    condition: 'intact',
    receivedAt: now - DAY,
  });
  await call(t, '/api/methods', {
    id: 'tensile',
    standard: 'ISO 6892-1:2019',
    title: 'Tensile testing at room temperature',
    definition: {
      measurands: [{ name: 'force', unit: 'kN', channel: 'c' }],
      instrumentTypes: ['x'],
      decisionRule: { kind: 'simple-acceptance' },
      results: [
        { name: 'Fm', title: 'maximum force', measurand: 'force', statistic: 'max', resolution: 0.01, repeatability: 0.05, limits: { min: 40 } },
      ],
    },
  });
  browser = await launch();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await gw?.end();
  await t?.stop();
});

describe('certificate actions', () => {
  test('a signatory issues a draft after a confirmation, sees a refusal translated, and revokes the issued one with a reason; a client only reads', async () => {
    const good = await call(t, '/api/certificates', { run: await completedRun('utm-1') });
    const blocked = await call(t, '/api/certificates', { run: await completedRun('utm-2') });
    const signatory = await signInAs(browser, t, 'signatory');
    try {
      const { page } = signatory;
      // the drafts waiting for a signatory, listed on the front page; each opens its own view
      await page.selectOption('[data-test="certificate-filter"]', 'draft');
      await page.waitForSelector('[data-test="certificates"][data-shown="draft"]', WAIT);
      const drafts = await page
        .locator('[data-test="certificate"]')
        .evaluateAll((rows) => rows.map((r) => [r.getAttribute('data-certificate'), r.getAttribute('data-status')]));
      expect(drafts.sort()).toEqual(
        [
          [good.id, 'draft'],
          [blocked.id, 'draft'],
        ].sort(),
      );
      await page.click(`[data-test="certificate"][data-certificate="${good.id}"] [data-test="certificate-link"]`);
      await page.waitForSelector(`[data-test="certificate-view"][data-certificate="${good.id}"][data-status="draft"]`, WAIT);
      await page.waitForSelector('[data-test="no-blockers"]', WAIT);
      expect(await page.locator('[data-test="certificate-pdf"]').count()).toBe(0);
      await page.selectOption('[data-test="certificate-language"]', 'en');
      await page.click('[data-test="certificate-issue"]');
      // asked first, in the page's language, naming the report and the language it is printed in
      expect((await confirm(page)).text).toBe(
        message('en', 'certificate.confirm.issue', { id: good.id, language: message('en', 'certificate.languages.en') }),
      );
      await page.waitForSelector('[data-test="certificate-view"][data-status="valid"]', WAIT);
      expect(await page.locator('[data-test="certificate-notice"]').innerText()).toBe(message('en', 'certificate.done.issue', { id: good.id }));
      expect(await seriousViolations(page, '[data-test="certificate-view"]')).toEqual([]);
      const issued = await call(t, `/api/certificates/${good.id}`, undefined, 'signatory');
      expect(issued).toMatchObject({ status: 'valid', issuedBy: 'signatory' });
      expect(await page.locator('[data-test="certificate-verify"]').getAttribute('href')).toBe(issued.verifyUrl);
      expect(await page.locator('[data-test="certificate-pdf"]').getAttribute('href')).toBe(`/api/certificates/${good.id}/pdf`);

      // a revocation needs a reason: the dialog asks for it and does not confirm without it
      await page.click('[data-test="certificate-revoke"]');
      expect(await confirm(page, 'wrong specimen dimensions recorded')).toEqual({
        title: message('en', 'certificate.confirmTitle.revoke', { id: good.id }),
        text: message('en', 'certificate.confirm.revoke', { id: good.id }),
      });
      await page.waitForSelector('[data-test="certificate-view"][data-status="revoked"]', WAIT);
      expect(signatory.dialogs).toEqual([]);
      expect(await page.locator('[data-test="revocation-reason"]').innerText()).toBe('wrong specimen dimensions recorded');
      expect(await page.locator('[data-test="certificate-status"]').innerText()).toContain(message('en', 'certificate.status.revoked'));
      expect(await page.locator('[data-test="certificate-actions"]').count()).toBe(0);
      expect(await call(t, `/api/certificates/${good.id}`, undefined, 'signatory')).toMatchObject({
        status: 'revoked',
        revocationReason: 'wrong specimen dimensions recorded',
      });
      await screenshot(page, 'certificate-revoked');

      // a draft that cannot be issued: its blockers, and the server's refusal translated
      await page.goto(`${t.base}/#/certificates/${blocked.id}`);
      await page.waitForSelector(`[data-test="certificate-view"][data-certificate="${blocked.id}"] [data-test="blocker"]`, WAIT);
      const blockers = (await call(t, `/api/certificates/${blocked.id}`, undefined, 'signatory')).blockerDetails;
      expect(blockers.length).toBeGreaterThan(0);
      // each by its kind, in the page's language (the server's English kept in data-server-text)
      expect(
        await page
          .locator('[data-test="blocker"]')
          .evaluateAll((b) => b.map((x) => [x.getAttribute('data-kind'), x.getAttribute('data-server-text')])),
      ).toEqual(blockers.map((b) => [b.kind, b.text]));
      await page.click('[data-test="certificate-issue"]');
      await confirm(page);
      await page.waitForSelector('[data-test="certificate-error"]', WAIT);
      const direct = await t.fetch(
        `/api/certificates/${blocked.id}/issue`,
        { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' },
        'signatory',
      );
      expect(direct.status).toBe(409);
      expect(await page.locator('[data-test="certificate-error"]').innerText()).toBe(refusalText('en', await direct.json()));
      expect(await page.locator('[data-test="certificate-view"]').getAttribute('data-status')).toBe('draft');
      expect(signatory.errors).toEqual([]);
    } finally {
      await signatory.close();
    }

    const client = await signIn(browser, t, 'client');
    try {
      const { page } = client;
      await page.goto(`${t.base}/#/certificates/${good.id}`);
      await page.waitForSelector('[data-test="certificate-view"][data-status="revoked"]', WAIT);
      expect(await page.locator('[data-test="revocation-reason"]').innerText()).toBe('wrong specimen dimensions recorded');
      expect(await page.locator('[data-test="certificate-pdf"]').count()).toBe(1);
      expect(await page.locator('[data-test="certificate-actions"]').count()).toBe(0);
      expect(await page.locator('[data-test="certificate-issue"], [data-test="certificate-revoke"], [data-test="certificate-amend"]').count()).toBe(
        0,
      );
      // the PDF link downloads the issued file
      const pdf = await page.evaluate(
        async (href) => {
          const res = await fetch(href);
          return { status: res.status, type: res.headers.get('content-type') };
        },
        await page.locator('[data-test="certificate-pdf"]').getAttribute('href'),
      );
      expect(pdf).toEqual({ status: 200, type: 'application/pdf' });
      expect(client.errors).toEqual([]);
    } finally {
      await client.close();
    }
  }, 120_000);
});

describe('one rounding', () => {
  test("the run page shows each result's value and U exactly as the issued report gives them, character for character", async () => {
    const run = await completedRun('utm-1');
    const draft = await call(t, '/api/certificates', { run });
    await call(t, `/api/certificates/${draft.id}/issue`, {}, 'signatory');
    const { content } = await call(t, `/api/certificates/${draft.id}`, undefined, 'client');
    const res = await t.fetch(`/api/certificates/${draft.id}/pdf`, {}, 'client');
    const rows = resultRows(
      pdfText(new Uint8Array(await res.arrayBuffer())),
      content.results.map((r) => r.name),
    );
    expect(content.results.length).toBeGreaterThan(0);
    // this run's U is one whose rounding to nearest differs from the report's (up): the case the page once got wrong
    expect(content.results.some((r) => r.uncertainty.expanded.toPrecision(2) !== r.uncertainty.reported)).toBe(true);
    const client = await signIn(browser, t, 'client');
    try {
      const { page } = client;
      await page.goto(`${t.base}/#/runs/${run}`);
      await page.waitForSelector('[data-test="results"] [data-test="result"]', WAIT);
      for (const r of content.results) {
        const row = page.locator(`[data-test="result"][data-result="${r.name}"]`);
        const value = await row.locator('[data-test="result-value"]').innerText();
        const uncertainty = await row.locator('[data-test="result-uncertainty"]').innerText();
        expect(value).toBe(`${r.reported} ${r.unit}`);
        expect(uncertainty).toBe(`± ${r.uncertainty.reported} ${r.unit} (k = ${r.uncertainty.coverageFactor})`);
        // and the results table of the PDF as issued prints the same strings: value, U, k
        expect(rows.get(r.name)?.slice(1, 4)).toEqual([r.reported, r.uncertainty.reported, String(r.uncertainty.coverageFactor)]);
        expect(value).toBe(`${rows.get(r.name)?.[1]} ${r.unit}`);
      }
      expect(client.errors).toEqual([]);
    } finally {
      await client.close();
    }
  }, 120_000);
});

describe('a report in Chinese, on a phone, in Shanghai', () => {
  test('a signatory issues a bilingual report: Chinese question, status and zone-named times; fits 390 x 844; no serious axe violation', async () => {
    const run = await completedRun('utm-1');
    const draft = await call(t, '/api/certificates', { run });
    const signatory = await signInAs(browser, t, 'signatory', { locale: 'zh-CN', timezoneId: 'Asia/Shanghai', screen: PHONE });
    try {
      const { page } = signatory;
      // the front page's list of reports, in Chinese, as cards that fit the phone
      await page.waitForSelector(`[data-test="certificate"][data-certificate="${draft.id}"]`, WAIT);
      expect(await page.locator('#certificates-title').innerText()).toBe(message('zh-CN', 'certificate.listTitle'));
      // each report a card (the width of the front page is its other sections' matter; the matrix test checks it)
      expect(
        await page
          .locator('[data-test="certificate"]')
          .first()
          .evaluate((row) => getComputedStyle(row).display),
      ).toBe('block');
      expect(await seriousViolations(page, '[data-test="certificates"]')).toEqual([]);

      await page.goto(`${t.base}/#/certificates/${draft.id}`);
      await page.waitForSelector(`[data-test="certificate-view"][data-certificate="${draft.id}"] [data-test="no-blockers"]`, WAIT);
      expect(await page.locator('[data-test="no-blockers"]').innerText()).toBe(message('zh-CN', 'certificate.noBlockers'));
      expect(await overflowing(page, '[data-test="certificate-view"]')).toEqual([]);
      expect(await seriousViolations(page, '[data-test="certificate-view"]')).toEqual([]);
      // the report language, chosen by its label
      await page.getByLabel(message('zh-CN', 'certificate.language')).selectOption('bilingual');
      await page.click('[data-test="certificate-issue"]');
      expect((await confirm(page)).text).toBe(
        message('zh-CN', 'certificate.confirm.issue', { id: draft.id, language: message('zh-CN', 'certificate.languages.bilingual') }),
      );
      await page.waitForSelector('[data-test="certificate-view"][data-status="valid"]', WAIT);
      expect(await page.locator('[data-test="certificate-status"]').innerText()).toContain(message('zh-CN', 'certificate.status.valid'));
      const issued = await call(t, `/api/certificates/${draft.id}`, undefined, 'signatory');
      // issued at, in Shanghai (UTC+8, no summer time) and the zone named
      const shanghai = new Date(issued.issuedAt + 8 * 3_600_000).toISOString();
      const shown = await page.locator('[data-test="certificate-issued"]').innerText();
      expect(shown).toContain(shanghai.slice(11, 19));
      expect(shown).toContain('GMT+8');
      expect(await page.locator('[data-test="certificate-downloads"] [data-test="certificate-pdf"]').innerText()).toBe(
        message('zh-CN', 'certificate.download.pdf'),
      );
      expect(await overflowing(page, '[data-test="certificate-view"]')).toEqual([]);
      expect(await seriousViolations(page, '[data-test="certificate-view"]')).toEqual([]);
      await screenshot(page, 'certificate-zh-phone');
      // and the report is printed in the language chosen
      expect(issued.content.language).toBe('bilingual');
      expect(signatory.errors).toEqual([]);
    } finally {
      await signatory.close();
    }
  }, 120_000);
});

describe('amendments and who may sign', () => {
  test('a signatory amends an issued certificate with a reason: the new one opens, the old one says amended by it', async () => {
    const run = await completedRun('utm-1');
    const old = await call(t, '/api/certificates', { run });
    await call(t, `/api/certificates/${old.id}/issue`, {}, 'signatory');
    let amendment;
    const { page, errors, dialogs, close } = await signInAs(browser, t, 'signatory');
    try {
      // the run's view links to its certificate
      await page.goto(`${t.base}/#/runs/${run}`);
      await page.click(`[data-test="run-certificate"][data-certificate="${old.id}"]`);
      await page.waitForSelector(`[data-test="certificate-view"][data-certificate="${old.id}"][data-status="valid"]`, WAIT);
      // an amendment with no field corrected: the diff says so; the dialog requires the reason
      await page.click('[data-test="certificate-amend"]');
      await page.click('[data-test="amend-review"]');
      await page.waitForSelector('[data-test="amend-no-change"]', WAIT);
      await page.click('[data-test="amend-issue"]');
      expect((await confirm(page, 'customer name misspelt')).title).toBe(message('en', 'certificate.amendForm.confirmTitle', { id: old.id }));
      // the view moves to the amendment, issued at once
      await page.waitForFunction(
        (id) => {
          const view = document.querySelector('[data-test="certificate-view"]');
          return view !== null && view.getAttribute('data-certificate') !== id && view.getAttribute('data-status') === 'valid';
        },
        old.id,
        WAIT,
      );
      amendment = await page.locator('[data-test="certificate-view"]').getAttribute('data-certificate');
      expect(dialogs).toEqual([]);
      expect(await call(t, `/api/certificates/${amendment}`, undefined, 'signatory')).toMatchObject({
        amends: old.id,
        amendReason: 'customer name misspelt',
        status: 'valid',
      });
      expect(await page.locator('[data-test="certificate-view"]').innerText()).toMatch(/customer name misspelt/);
      await page.goto(`${t.base}/#/certificates/${old.id}`);
      await page.waitForSelector(`[data-test="certificate-view"][data-certificate="${old.id}"][data-status="amended"]`, WAIT);
      expect(await page.locator('[data-test="amended-by"]').innerText()).toBe(amendment);
      expect(await page.locator('[data-test="certificate-actions"]').count()).toBe(0);
      expect(errors).toEqual([]);
    } finally {
      await close();
    }
    // a client reads the certificate in force: its status, its downloads, its verification link; no action
    const client = await signIn(browser, t, 'client');
    try {
      await client.page.goto(`${t.base}/#/certificates/${amendment}`);
      await client.page.waitForSelector(`[data-test="certificate-view"][data-certificate="${amendment}"][data-status="valid"]`, WAIT);
      await client.page.waitForSelector('[data-test="certificate-verify"]', WAIT);
      expect(await client.page.locator('[data-test="certificate-downloads"] a').count()).toBe(4);
      expect(
        await client.page.locator('[data-test="certificate-actions"], [data-test="certificate-amend"], [data-test="certificate-revoke"]').count(),
      ).toBe(0);
      expect(client.errors).toEqual([]);
    } finally {
      await client.close();
    }
  }, 90_000);

  test('a signatory who performed the run is refused, and the refusal is translated', async () => {
    const draft = await call(t, '/api/certificates', { run: await completedRun('utm-1') });
    // the technician who performed the run becomes a signatory: the check is by person, not by role
    const promoted = await t.fetch(
      '/api/users/technician',
      { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ role: 'signatory', reason: 'promoted' }) },
      'admin',
    );
    expect(promoted.status).toBe(200);
    const { page, errors, close } = await signInAs(browser, t, 'technician');
    try {
      expect(await page.locator('[data-test="user"]').innerText()).toContain(`(${message('en', 'common.roles.signatory')})`);
      await page.goto(`${t.base}/#/certificates/${draft.id}`);
      await page.waitForSelector(`[data-test="certificate-view"][data-certificate="${draft.id}"] [data-test="no-blockers"]`, WAIT);
      await page.click('[data-test="certificate-issue"]');
      await confirm(page);
      const refusal = page.locator('[data-test="certificate-error"]');
      await refusal.waitFor(WAIT);
      // the same request, sent directly: the server's English says why; the page says it in the user's language
      // (in the page's session: the promotion ended the technician's API token)
      const { status, body } = await page.evaluate(async (id) => {
        const csrf = decodeURIComponent(/(?:^|;\s*)labtrace_csrf=([^;]*)/.exec(document.cookie)?.[1] ?? '');
        const res = await fetch(`/api/certificates/${id}/issue`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-csrf-token': csrf },
          body: '{}',
        });
        return { status: res.status, body: await res.json() };
      }, draft.id);
      expect(status).toBe(403);
      expect(body.error).toMatch(/^technician performed run .*: the certificate must be approved by another signatory$/);
      expect(await refusal.innerText()).toBe(refusalText('en', body));
      expect(await page.locator('[data-test="certificate-view"]').getAttribute('data-status')).toBe('draft');
      expect(errors).toEqual([]);
    } finally {
      await close();
    }
  }, 90_000);
});
