// The signatory's day with test reports, in a real headless Chromium against a real server (a signing test gateway
// measures the runs), through the dashboard alone, each effect checked through the REST API: the list of reports
// searched and filtered on the server, updated live; a draft reviewed as it will be issued (its results with U and
// k and verdicts, its instruments and their calibration, what blocks it, translated) with the PDF preview marked as
// a draft; issued after a confirmation; then, in Chinese on a phone in Shanghai, amended by correcting the item
// description (Chinese text) and the customer's name: the diff before the issue, a reason, and the new report
// carries the corrections and "Amendment to Report No. <old>" in its content and its PDF (pdftotext).
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { pdfText } from '../../server/dist/test/certificates/pdf-text.js';
import { send, startServer, TestGateway, waitFor } from '../../server/dist/test/helpers/server.js';
import { call, launch, WAIT } from './helpers/browser.js';
import { DESKTOP, message, overflowing, PHONE, seriousViolations, signInAs } from './helpers/records.js';

const DAY = 86_400_000;
const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
let t;
let gw;
let browser;
let seq = 0;

/** a picture for the docs (docs/screenshots/reports-<what>.png) when LABTRACE_SCREENSHOTS=1: the visible page only */
async function docShot(page, what) {
  if (process.env.LABTRACE_SCREENSHOTS !== '1') return;
  const dir = path.join(REPO_ROOT, 'docs', 'screenshots');
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: path.join(dir, `reports-${what}.png`), fullPage: false, scale: 'css' });
}

/** a run of the tensile method on the instrument, started, measured and stopped by the technician */
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

/** the PDF behind a link of the page, read with the page's session: its status, type, disposition and text */
async function pdfBehind(page, href) {
  const { status, type, disposition, bytes } = await page.evaluate(async (href) => {
    const res = await fetch(href);
    return {
      status: res.status,
      type: res.headers.get('content-type'),
      disposition: res.headers.get('content-disposition'),
      bytes: Array.from(new Uint8Array(await res.arrayBuffer())),
    };
  }, href);
  return { status, type, disposition, text: status === 200 ? pdfText(new Uint8Array(bytes)).join('\n') : '' };
}

/** confirms the open dialog, with a reason when it asks for one; answers the dialog's title */
async function confirm(page, reason) {
  const dialog = page.locator('[data-test="confirm-dialog"]');
  await dialog.waitFor({ state: 'visible', ...WAIT });
  const title = await dialog.locator('#confirm-title').innerText();
  if (reason !== undefined) await dialog.locator('[data-test="confirm-reason"]').fill(reason);
  await dialog.locator('[data-test="confirm-ok"]').click();
  return title;
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
  // utm-1 is calibrated; utm-2 never was, so a report of its run cannot state traceability
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
    organization: 'org-a',
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

describe("the signatory's review", () => {
  test('the list finds the drafts; a draft shows the report as it will be issued, its blockers and the PDF preview; it is issued after a confirmation', async () => {
    const good = await call(t, '/api/certificates', { run: await completedRun('utm-1') });
    const blocked = await call(t, '/api/certificates', { run: await completedRun('utm-2') });
    const signatory = await signInAs(browser, t, 'signatory', { screen: DESKTOP });
    try {
      const { page } = signatory;
      // the drafts waiting for a signatory, newest first
      await page.selectOption('[data-test="certificate-filter"]', 'draft');
      await page.waitForSelector('[data-test="certificates"][data-shown="draft"]', WAIT);
      const rows = () => page.locator('[data-test="certificate"]').evaluateAll((r) => r.map((x) => x.getAttribute('data-certificate')));
      expect(await rows()).toEqual([blocked.id, good.id]);
      // searched on the server by report number
      await page.fill('[data-test="certificate-q"]', good.id);
      await page.click('[data-test="certificate-search-submit"]');
      await page.waitForFunction(
        (id) => document.querySelectorAll('[data-test="certificate"]').length === 1 && document.querySelector(`[data-certificate="${id}"]`) !== null,
        good.id,
        WAIT,
      );
      // a new draft appears without reloading (the server announces it): clear the search, then request one
      await page.click('[data-test="certificate-search-clear"]');
      await page.waitForFunction(() => document.querySelectorAll('[data-test="certificate"]').length === 2, undefined, WAIT);
      const third = await call(t, '/api/certificates', { run: await completedRun('utm-1') });
      await page.waitForSelector(`[data-test="certificate"][data-certificate="${third.id}"]`, WAIT);
      expect((await rows())[0]).toBe(third.id);

      // the draft's review: the report as it will be issued
      await page.click(`[data-test="certificate"][data-certificate="${good.id}"] [data-test="certificate-link"]`);
      await page.waitForSelector(
        `[data-test="certificate-view"][data-certificate="${good.id}"][data-status="draft"] [data-test="report-content"][data-draft="true"]`,
        WAIT,
      );
      const review = await call(t, `/api/certificates/${good.id}`, undefined, 'signatory');
      expect(review.blockerDetails).toEqual([]);
      await page.waitForSelector('[data-test="no-blockers"]', WAIT);
      expect(await page.locator('[data-test="report-customer-name"]').innerText()).toBe(review.draft.customer.name);
      expect(await page.locator('[data-test="report-item-description"]').innerText()).toBe('steel bar B500B, 10 mm');
      for (const r of review.draft.results) {
        const row = page.locator(`[data-test="report-result"][data-result="${r.name}"]`);
        expect(await row.locator('[data-test="report-value"]').innerText()).toBe(`${r.reported} ${r.unit}`);
        expect(await row.locator('[data-test="report-uncertainty"]').innerText()).toBe(`${r.uncertainty.reported} ${r.unit}`);
        expect(await row.locator('[data-test="report-k"]').innerText()).toBe(String(r.uncertainty.coverageFactor));
        expect(await row.locator('[data-test="report-verdict"]').getAttribute('data-verdict')).toBe(r.conformity?.verdict ?? '');
      }
      expect(await page.locator('[data-test="report-rule"]').first().innerText()).toContain(message('en', 'run.results.rule.simple-acceptance'));
      const instrument = page.locator('[data-test="report-instrument"][data-instrument="utm-1"]');
      expect(await instrument.getAttribute('data-calibration')).toBe('valid');
      expect(await instrument.locator('[data-test="report-calibration"]').innerText()).toContain('CAL-utm-1');
      expect(await page.locator('[data-test="report-accreditation"]').innerText()).toBe(
        message('en', 'certificate.report.accredited', { body: 'CNAS', number: 'L1234' }),
      );
      // the PDF preview: the server's print of the draft, marked as a draft, in the language chosen
      await page.selectOption('[data-test="certificate-language"]', 'en');
      const frame = page.locator('[data-test="certificate-preview-frame"]');
      const src = await frame.getAttribute('src');
      expect(src).toBe(`/api/certificates/${good.id}/preview.pdf?language=en`);
      const preview = await pdfBehind(page, src);
      expect(preview).toMatchObject({ status: 200, type: 'application/pdf' });
      expect(preview.disposition).toMatch(/^inline/);
      expect(preview.text).toContain('DRAFT — not issued');
      expect(preview.text).toContain(review.draft.results[0].reported);
      expect(await seriousViolations(page, '[data-test="certificate-view"]')).toEqual([]);
      // (the picture: the report's content from its heading, the results table in view)
      await page.locator('[data-test="report-content"]').evaluate((el) => el.scrollIntoView());
      await docShot(page, 'review');

      // issued after a confirmation (a signing action): the dialog names the report
      await page.click('[data-test="certificate-issue"]');
      expect(await confirm(page)).toBe(message('en', 'certificate.confirmTitle.issue', { id: good.id }));
      await page.waitForSelector(`[data-test="certificate-view"][data-status="valid"] [data-test="report-content"][data-draft="false"]`, WAIT);
      expect(await page.locator('[data-test="certificate-notice"]').innerText()).toBe(message('en', 'certificate.done.issue', { id: good.id }));
      const issued = await call(t, `/api/certificates/${good.id}`, undefined, 'signatory');
      expect(issued).toMatchObject({ status: 'valid', issuedBy: 'signatory', content: { language: 'en' } });
      expect(issued.content.results).toEqual(review.draft.results);
      expect(await page.locator('[data-test="certificate-preview"]').count()).toBe(0);

      // a blocked draft: why, in the page's language, by kind, naming the instrument and the run
      await page.goto(`${t.base}/#/certificates/${blocked.id}`);
      await page.waitForSelector(`[data-test="certificate-view"][data-certificate="${blocked.id}"] [data-test="blocker"]`, WAIT);
      const details = (await call(t, `/api/certificates/${blocked.id}`, undefined, 'signatory')).blockerDetails;
      const never = details.find((b) => b.kind === 'instrument-never-calibrated');
      expect(never).toBeDefined();
      expect(await page.locator('[data-test="blocker"][data-kind="instrument-never-calibrated"]').innerText()).toBe(
        message('en', 'certificate.blocker.instrument-never-calibrated', never.params),
      );
      expect(await page.locator('[data-test="blocker"]').count()).toBe(details.length);
      expect(signatory.errors).toEqual([]);
      expect(signatory.dialogs).toEqual([]);
    } finally {
      await signatory.close();
    }

    // the technician reads the review (content and preview) but is offered no signing action
    const technician = await signInAs(browser, t, 'technician');
    try {
      const { page } = technician;
      await page.goto(`${t.base}/#/certificates/${blocked.id}`);
      await page.waitForSelector(`[data-test="certificate-view"][data-certificate="${blocked.id}"] [data-test="report-content"]`, WAIT);
      await page.waitForSelector('[data-test="certificate-preview-frame"]', WAIT);
      expect(await page.locator('[data-test="certificate-actions"], [data-test="certificate-issue"]').count()).toBe(0);
      expect(technician.errors).toEqual([]);
    } finally {
      await technician.close();
    }
  }, 180_000);
});

describe('an amendment that corrects the report, in Chinese, on a phone', () => {
  test('the signatory corrects the item description (Chinese) and the customer name, sees the diff, gives a reason; the new report carries them and "Amendment to Report No."', async () => {
    const draft = await call(t, '/api/certificates', { run: await completedRun('utm-1'), language: 'bilingual' });
    await call(t, `/api/certificates/${draft.id}/issue`, {}, 'signatory');
    const signatory = await signInAs(browser, t, 'signatory', { locale: 'zh-CN', timezoneId: 'Asia/Shanghai', screen: PHONE });
    const description = '热轧带肋钢筋 HRB400E，直径 10 mm，长 500 mm';
    const customer = '上海精密检测客户有限公司';
    const reason = '样品描述及委托方名称录入错误，予以更正';
    let amendment;
    try {
      const { page } = signatory;
      await page.goto(`${t.base}/#/certificates/${draft.id}`);
      await page.waitForSelector(
        `[data-test="certificate-view"][data-certificate="${draft.id}"][data-status="valid"] [data-test="report-content"]`,
        WAIT,
      );
      await page.click('[data-test="certificate-amend"]');
      await page.waitForSelector('[data-test="amend-form"]', WAIT);
      // the form holds the report's fields as issued
      expect(await page.locator('[data-test="amend-item.description"]').inputValue()).toBe('steel bar B500B, 10 mm');
      await page.getByLabel(message('zh-CN', 'certificate.amendForm.field.itemDescription')).fill(description);
      await page.getByLabel(message('zh-CN', 'certificate.amendForm.field.customerName')).fill(customer);
      await page.click('[data-test="amend-review"]');
      await page.waitForSelector('[data-test="amend-diff"] [data-test="amend-change"]', WAIT);
      const changes = await page
        .locator('[data-test="amend-change"]')
        .evaluateAll((rows) =>
          rows.map((r) => [
            r.getAttribute('data-field'),
            r.querySelector('[data-test="amend-before"]').innerText,
            r.querySelector('[data-test="amend-after"]').innerText,
          ]),
        );
      expect(changes).toEqual([
        ['customer.name', 'Client A', customer],
        ['item.description', 'steel bar B500B, 10 mm', description],
      ]);
      expect(await overflowing(page, '[data-test="certificate-view"]')).toEqual([]);
      expect(await seriousViolations(page, '[data-test="certificate-view"]')).toEqual([]);
      await page.locator('[data-test="amend-diff"]').scrollIntoViewIfNeeded();
      await docShot(page, 'amend-diff-zh-phone');
      // a reason is required: the dialog asks for it, in Chinese
      await page.click('[data-test="amend-issue"]');
      expect(await confirm(page, reason)).toBe(message('zh-CN', 'certificate.amendForm.confirmTitle', { id: draft.id }));
      // the view moves to the new report, issued at once
      await page.waitForFunction(
        (id) => {
          const view = document.querySelector('[data-test="certificate-view"]');
          return view !== null && view.getAttribute('data-certificate') !== id && view.getAttribute('data-status') === 'valid';
        },
        draft.id,
        WAIT,
      );
      amendment = await page.locator('[data-test="certificate-view"]').getAttribute('data-certificate');
      await page.waitForSelector('[data-test="report-content"][data-draft="false"]', WAIT);
      expect(await page.locator('[data-test="report-item-description"]').innerText()).toBe(description);
      expect(await page.locator('[data-test="report-customer-name"]').innerText()).toBe(customer);
      expect(await page.locator('[data-test="report-amends"]').innerText()).toContain(draft.id);
      expect(await overflowing(page, '[data-test="certificate-view"]')).toEqual([]);
      expect(signatory.errors).toEqual([]);
    } finally {
      await signatory.close();
    }
    // through the API: the new report carries the corrections and names the one it amends; the old one is amended
    const fresh = await call(t, `/api/certificates/${amendment}`, undefined, 'client');
    expect(fresh).toMatchObject({ status: 'valid', amends: draft.id, amendReason: reason });
    expect(fresh.content).toMatchObject({
      language: 'bilingual',
      customer: { name: customer },
      item: { description, condition: 'intact' },
      amendment: { amends: draft.id, reason },
    });
    expect(fresh.content.title).toContain(`Amendment to Report No. ${draft.id}`);
    expect(await call(t, `/api/certificates/${draft.id}`, undefined, 'client')).toMatchObject({ status: 'amended', amendedBy: amendment });
    // and its PDF as issued says so (pdftotext)
    const res = await t.fetch(`/api/certificates/${amendment}/pdf`, {}, 'client');
    const text = pdfText(new Uint8Array(await res.arrayBuffer())).join('\n');
    expect(text).toMatch(new RegExp(`Amendment to Report No\\.\\s+${draft.id}`));
    expect(text).toContain(customer);
    expect(text).toContain('热轧带肋钢筋 HRB400E');
    expect(text).toContain(reason);
  }, 180_000);
});
