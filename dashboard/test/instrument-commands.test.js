// Zero and tare from an instrument's page, in a real headless Chromium against a real server and a test gateway:
// a technician in Chinese on a phone in Shanghai zeroes a balance after a confirmation (the gateway receives the
// CMD, the audit trail names the technician, the page says when it was asked, fits the phone and passes axe); when
// the gateway goes away the buttons turn off and say why (and the server refuses with a reason the dashboard
// translates); an auditor sees no commands; an instrument whose gateway sends none has no such section.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { startServer, TestGateway, waitFor } from '../../server/dist/test/helpers/server.js';
import { call, launch, WAIT } from './helpers/browser.js';
import { message, overflowing, PHONE, refusalText, seriousViolations, signInAs } from './helpers/records.js';

let t;
let browser;
let gw;

const balance = (id, commands) => ({
  id,
  identity: { maker: 'Mettler Toledo', model: 'XPR205', serialNumber: `S-${id}`, kind: 'balance' },
  channels: [{ name: 'mass', unit: 'g' }],
  ...(commands === undefined ? {} : { commands }),
});

beforeAll(async () => {
  t = await startServer();
  gw = await TestGateway.connect(t, 'gw-a');
  await gw.announce([balance('bal-1', ['zero', 'tare']), balance('bal-plain')]);
  for (let i = 0; (await t.server.registry.instrument('bal-plain')) === undefined; i++) {
    if (i > 500) throw new Error('the BIRTH was not recorded');
    await new Promise((r) => setTimeout(r, 20));
  }
  browser = await launch();
}, 90_000);

afterAll(async () => {
  await browser?.close();
  await gw?.end();
  await t?.stop();
});

const openPage = async (page, id) => {
  await page.goto(`${t.base}/#/instruments/${id}`);
  await page.waitForSelector(`[data-test="instrument-page"][data-loaded="true"][data-instrument="${id}"]`, WAIT);
};

describe('zero and tare', () => {
  test('in Chinese on a phone in Shanghai: a technician zeroes a balance after confirming; the gateway gets it, the trail names them', async () => {
    const s = await signInAs(browser, t, 'technician', { locale: 'zh-CN', timezoneId: 'Asia/Shanghai', screen: PHONE });
    try {
      const { page } = s;
      await openPage(page, 'bal-1');
      const section = page.locator('[data-test="instrument-commands"]');
      await section.waitFor(WAIT);
      expect(await section.locator('h2').innerText()).toBe(message('zh-CN', 'instruments.commands.title'));
      expect(await section.locator('[data-test="command-zero"]').innerText()).toBe(message('zh-CN', 'instruments.commands.zero'));
      expect(await section.locator('[data-test="command-tare"]').innerText()).toBe(message('zh-CN', 'instruments.commands.tare'));
      expect(await overflowing(page)).toEqual([]);
      expect(await seriousViolations(page)).toEqual([]);

      // cancelled: nothing is sent
      await section.locator('[data-test="command-zero"]').click();
      const dialog = page.locator('[data-test="confirm-dialog"]');
      await dialog.waitFor(WAIT);
      expect(await dialog.innerText()).toContain(message('zh-CN', 'instruments.commands.confirm.zero', { id: 'bal-1' }));
      await dialog.locator('[data-test="confirm-cancel"]').click();
      await new Promise((r) => setTimeout(r, 300));
      expect(gw.cmds.filter((c) => c.cmd === 'instrument')).toEqual([]);

      // confirmed: sent once, recorded, and said on the page in the user's zone
      await section.locator('[data-test="command-zero"]').click();
      await dialog.locator('[data-test="confirm-ok"]').click();
      await waitFor('the CMD at the gateway', () => gw.cmds.some((c) => c.cmd === 'instrument'));
      expect(gw.cmds.filter((c) => c.cmd === 'instrument')).toEqual([{ v: 1, cmd: 'instrument', instrument: 'bal-1', command: 'zero' }]);
      const status = section.locator('[data-test="commands-status"]');
      await page.waitForFunction((el) => el.textContent.trim() !== '', await status.elementHandle(), WAIT);
      const { items } = await call(t, '/api/audit-trail?recordType=instrument-command', undefined, 'auditor');
      expect(items).toEqual([expect.objectContaining({ actor: 'technician', recordId: 'bal-1', action: 'create' })]);
      const at = items[0].newValue.at;
      const shanghai = new Intl.DateTimeFormat('zh-CN', { timeZone: 'Asia/Shanghai', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(
        at,
      );
      const text = await status.innerText();
      expect(text).toContain(message('zh-CN', 'instruments.commands.zero'));
      expect(text).toContain(shanghai);
      expect(await seriousViolations(page)).toEqual([]);
    } finally {
      await s.close();
    }
  }, 90_000);

  test('a gateway gone turns the buttons off and says why; auditors and instruments without commands have no section', async () => {
    const s = await signInAs(browser, t, 'technician');
    try {
      const { page } = s;
      await openPage(page, 'bal-1');
      const section = page.locator('[data-test="instrument-commands"]');
      await section.waitFor(WAIT);
      // the gateway goes away while the page is open: the live list says so, the buttons are off and say why
      expect(await section.locator('[data-test="command-tare"]').isEnabled()).toBe(true);
      await gw.end();
      await waitFor('the gateway to be gone', () => !t.server.broker.connectedGateways().includes('gw-a'));
      await section.locator('[data-test="commands-offline"]').waitFor(WAIT);
      expect(await section.locator('[data-test="commands-offline"]').innerText()).toBe(message('en', 'instruments.commands.offline'));
      expect(await section.locator('[data-test="command-tare"]').isDisabled()).toBe(true);
      expect(await section.locator('[data-test="command-zero"]').isDisabled()).toBe(true);
      // the server refuses it all the same (what a page that has not heard yet would be told), with a reason the dashboard translates
      const res = await t.fetch(
        '/api/instruments/bal-1/commands',
        { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ command: 'tare' }) },
        'technician',
      );
      expect(res.status).toBe(409);
      const body = await res.json();
      expect(refusalText('zh-CN', body)).toBe(message('zh-CN', 'errors.reason.instrument.gateway-offline', { instrument: 'bal-1', gateway: 'gw-a' }));
      await openPage(page, 'bal-plain');
      expect(await page.locator('[data-test="instrument-commands"]').count()).toBe(0);
    } finally {
      await s.close();
    }
    const auditor = await signInAs(browser, t, 'auditor');
    try {
      await openPage(auditor.page, 'bal-1');
      await auditor.page.locator('[data-test="instrument-identity"]').waitFor(WAIT);
      expect(await auditor.page.locator('[data-test="instrument-commands"]').count()).toBe(0);
    } finally {
      await auditor.close();
    }
  }, 90_000);
});
