import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DevPage } from "../src/http/dev-page.js";
import { type RunningApp, startApp } from "./support/app.js";
import { uniquePhone } from "./support/capture-sms.js";
import { CHROMIUM, CHROMIUM_ARGS, chromiumReason } from "./support/chromium.js";

const skip = chromiumReason();

/** The same page served from another origin (another port), as a separately hosted front end would be. */
async function startStaticSite(): Promise<{ origin: string; close(): Promise<void> }> {
  const page = DevPage.locate();
  if (!page) throw new Error("web/ not found");
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?", 1)[0] ?? "/";
    if (!page.handle(req, res, path)) {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

describe.skipIf(skip)("the development login page in headless Chromium", () => {
  let s: RunningApp;
  let browser: Browser;
  let allowedSite: Awaited<ReturnType<typeof startStaticSite>>;
  let otherSite: Awaited<ReturnType<typeof startStaticSite>>;

  beforeAll(async () => {
    allowedSite = await startStaticSite();
    otherSite = await startStaticSite();
    s = await startApp({ CORS_ORIGINS: allowedSite.origin });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await s?.close();
    await allowedSite?.close();
    await otherSite?.close();
  });

  async function open(url: string): Promise<Page> {
    const page = await browser.newPage();
    page.setDefaultTimeout(20_000);
    await page.goto(url);
    await page.waitForSelector("body[data-state=phone]");
    return page;
  }

  /** Which steps a person can see: exactly one at a time. */
  async function visibleSteps(page: Page): Promise<string[]> {
    const steps = ["#phone-step", "#code-step", "#user-step"];
    const shown = await Promise.all(steps.map((sel) => page.isVisible(sel)));
    return steps.filter((_, i) => shown[i]);
  }

  /** Phone -> code (read from the "SMS") -> signed in; checks what the page shows. */
  async function logIn(page: Page): Promise<void> {
    const phone = uniquePhone();
    expect(await visibleSteps(page)).toEqual(["#phone-step"]);
    await page.fill("#phone", phone.slice(3)); // typed as a local number; the service adds +91
    await page.click("#send");
    await page.waitForSelector("body[data-state=code]");
    expect(await page.textContent("#sent-to")).toBe(phone);
    expect(await visibleSteps(page)).toEqual(["#code-step"]);

    await page.fill("#code", s.sms.lastCode(phone) === "000000" ? "111111" : "000000");
    await page.click("#verify");
    await page.waitForSelector("#error:not(:empty)");
    expect(await page.textContent("#error")).toMatch(/incorrect code/);
    expect(await page.getAttribute("body", "data-state")).toBe("code");

    await page.fill("#code", s.sms.lastCode(phone));
    await page.click("#verify");
    await page.waitForSelector("body[data-state=signed-in]");
    expect(await visibleSteps(page)).toEqual(["#user-step"]);
    expect(await page.textContent("#user-phone")).toBe(phone);
    expect(await page.textContent("#user-name")).toBe(`User ${phone.slice(-4)}`);
    expect(await page.textContent("#user-id")).toMatch(/^\d+$/);
    const exp = Number(await page.getAttribute("#expires", "data-epoch-seconds"));
    expect(exp * 1000).toBeGreaterThan(Date.now() + 800_000);
    expect(exp * 1000).toBeLessThan(Date.now() + 1_000_000);

    await page.click("#logout");
    await page.waitForSelector("body[data-state=phone]");
  }

  it("logs in on the page the service serves at /", async () => {
    const page = await open(`${s.baseUrl}/`);
    try {
      await logIn(page);
    } finally {
      await page.close();
    }
  });

  it("asks for a new code, and goes back to correct the number", async () => {
    const page = await browser.newPage();
    page.setDefaultTimeout(20_000);
    // Everything the page loads is there: its script, its icon (no 404 in anyone's log).
    const missing: string[] = [];
    page.on("response", (r) => {
      if (r.request().method() === "GET" && r.status() >= 400) missing.push(`${r.status()} ${r.url()}`);
    });
    try {
      await page.goto(`${s.baseUrl}/`);
      await page.waitForSelector("body[data-state=phone]");
      const typo = uniquePhone();
      const phone = uniquePhone();

      await page.fill("#phone", typo);
      await page.click("#send");
      await page.waitForSelector("body[data-state=code]");
      expect(await page.textContent("#sent-to")).toBe(typo);

      // Change number: back to the first step with what was typed, to correct it.
      await page.click("#change-number");
      await page.waitForSelector("body[data-state=phone]");
      expect(await visibleSteps(page)).toEqual(["#phone-step"]);
      expect(await page.inputValue("#phone")).toBe(typo);
      await page.fill("#phone", phone);
      await page.click("#send");
      await page.waitForSelector("body[data-state=code]");
      expect(await page.textContent("#sent-to")).toBe(phone);

      // Resend: a second code to the same number; the first one no longer works, the new one does.
      const first = s.sms.lastCode(phone);
      await page.click("#resend");
      await page.waitForSelector("#notice:not(:empty)");
      expect(await page.textContent("#notice")).toBe(`A new code was sent to ${phone}.`);
      expect(s.sms.sent.filter((m) => m.to === phone)).toHaveLength(2);
      const second = s.sms.lastCode(phone);
      if (first !== second) {
        await page.fill("#code", first);
        await page.click("#verify");
        await page.waitForSelector("#error:not(:empty)");
        expect(await page.getAttribute("body", "data-state")).toBe("code");
      }
      await page.fill("#code", second);
      await page.click("#verify");
      await page.waitForSelector("body[data-state=signed-in]");
      expect(await page.textContent("#user-phone")).toBe(phone);
      expect(s.sms.sent.filter((m) => m.to === typo)).toHaveLength(1);
      expect(missing).toEqual([]);
    } finally {
      await page.close();
    }
  });

  it("logs in from a second origin listed in CORS_ORIGINS", async () => {
    const page = await open(`${allowedSite.origin}/?api=${encodeURIComponent(s.baseUrl)}`);
    try {
      expect(new URL(page.url()).origin).not.toBe(new URL(s.baseUrl).origin);
      await logIn(page);
    } finally {
      await page.close();
    }
  });

  it("fails from an origin not in CORS_ORIGINS, and no code is sent", async () => {
    const page = await open(`${otherSite.origin}/?api=${encodeURIComponent(s.baseUrl)}`);
    try {
      const phone = uniquePhone();
      await page.fill("#phone", phone);
      await page.click("#send");
      await page.waitForSelector("#error:not(:empty)");
      // The browser refused the preflight's answer: the request never reached the service.
      expect(await page.textContent("#error")).toMatch(/failed to fetch/i);
      expect(await page.getAttribute("body", "data-state")).toBe("phone");
      expect(s.sms.sent.filter((m) => m.to === phone)).toEqual([]);
    } finally {
      await page.close();
    }
  });
});
