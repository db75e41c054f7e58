// cairn's web UI in headless Chromium (Debian's /usr/bin/chromium, never a downloaded
// browser), driven by playwright-core, checked by axe-core.
//
//   CAIRN_URL=http://127.0.0.1:8080 node tests/browser/run.mjs
//
// Environment: CAIRN_URL (required), CAIRN_EMAIL and CAIRN_PASSWORD (used when a page
// redirects to /login), CAIRN_SCREENSHOTS (default target/screenshots), CHROMIUM
// (default /usr/bin/chromium), CAIRN_BROWSER_STRICT=1 (every interaction required).
//
// 1. Signs in if asked to, visits every top-level page linked from #main-nav and one
//    account, saves a screenshot of each, and fails on any console error, uncaught
//    exception or failed request (network error or HTTP status >= 400), and on any
//    serious or critical axe-core violation.
// 2. Runs the interactions of the UI contract (the selectors the pages promise, listed below). An
//    interaction whose selector is absent is skipped with a notice while it is not
//    `required`; flip `required` to true (or set CAIRN_BROWSER_STRICT=1) once the page
//    that carries it has landed.
//
// Exits 0 when everything passed, 1 otherwise; the last line is "N passed, N failed".

import { mkdtemp, mkdir, readFile, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const { chromium } = require("playwright-core");
const here = path.dirname(fileURLToPath(import.meta.url));
const axeSource = await readFile(require.resolve("axe-core/axe.min.js"), "utf8");

const BASE = (process.env.CAIRN_URL || "").replace(/\/$/, "");
if (!BASE) {
  console.error("CAIRN_URL is required, e.g. CAIRN_URL=http://127.0.0.1:8080");
  process.exit(2);
}
const SHOTS = process.env.CAIRN_SCREENSHOTS || path.join(here, "..", "..", "target", "screenshots");
const STRICT = process.env.CAIRN_BROWSER_STRICT === "1";
const STEP_TIMEOUT = 15_000;

// ---------------------------------------------------------------------------------------
// What every page must have by the contract, each flippable like the interactions below:
// while `required` is false a page without it passes with a printed notice.

const contract = {
  landmarks: { required: true, what: "every page has <main> and <h1>" },
  nav: { required: true, what: "every page has nav#main-nav linking the top-level pages" },
  icon: { required: true, what: "the UI serves its icon (browsers ask for /favicon.ico)" },
};

// ---------------------------------------------------------------------------------------
// The interactions of the contract. `page` is where the step starts; `needs` the
// selectors that must be there for it to run; `required: true` turns an absent selector
// into a printed notice instead of a failure.

const interactions = [
  {
    name: "filter accounts",
    required: true,
    page: "/accounts",
    needs: ["form#account-filters", "select[name=band]", "table#accounts"],
    async run(page) {
      const band = page.locator("form#account-filters select[name=band]");
      const value = await firstRealOption(band);
      await band.selectOption(value);
      await page.locator("form#account-filters input[name=q]").fill("");
      await submit(page, "form#account-filters");
      must(new URL(page.url()).searchParams.get("band") === value, `the filter did not reach the URL: ${page.url()}`);
      await page.locator("table#accounts").waitFor();
    },
  },
  {
    name: "open an account",
    required: true,
    page: "/accounts",
    needs: ['table#accounts a[href^="/accounts/"]'],
    async run(page) {
      await Promise.all([page.waitForLoadState("load"), page.locator('table#accounts a[href^="/accounts/"]').first().click()]);
      must(/\/accounts\/[^/]+$/.test(new URL(page.url()).pathname), `not an account page: ${page.url()}`);
      await page.locator("h1").waitFor();
    },
  },
  {
    name: "override health",
    required: true,
    page: "@account",
    needs: ["form#health-override", "form#health-override input[name=score]"],
    async run(page) {
      const form = page.locator("form#health-override");
      await form.locator("input[name=score]").fill("75");
      await form.locator("input[name=reason]").fill("renewal agreed on the phone (browser test)");
      const expires = new Date(Date.now() + 30 * 86_400_000).toISOString().slice(0, 10);
      await form.locator("input[name=expires]").fill(expires);
      await submit(page, "form#health-override");
      await expectText(page, "main", "renewal agreed on the phone (browser test)");
    },
  },
  {
    name: "add a note",
    required: true,
    page: "@account",
    needs: ["form#add-note", "form#add-note textarea[name=body]"],
    async run(page) {
      const note = `Called the champion, all good (browser test ${Date.now()})`;
      await page.locator("form#add-note textarea[name=body]").fill(note);
      await submit(page, "form#add-note");
      await expectText(page, "#notes", note);
    },
  },
  {
    name: "claim a task",
    required: true,
    page: "/tasks",
    needs: ["tr.task form.claim-task"],
    async run(page) {
      // A refused claim (403, CSRF, 5xx) shows as a failed request.
      await submit(page, "tr.task form.claim-task");
      await page.locator("main").waitFor();
    },
  },
  {
    name: "complete a task",
    required: true,
    page: "/tasks",
    needs: ["tr.task form.complete-task", "tr.task form.complete-task select[name=outcome]"],
    async run(page) {
      const outcome = page.locator("tr.task form.complete-task select[name=outcome]").first();
      await outcome.selectOption(await firstRealOption(outcome));
      await submit(page, "tr.task form.complete-task");
      await page.locator("main").waitFor();
    },
  },
  {
    name: "pause a program",
    required: true,
    page: "@program",
    needs: ["form#pause-program, form#resume-program"],
    async run(page) {
      const paused = (await page.locator("form#resume-program").count()) > 0;
      const [from, to] = paused ? ["form#resume-program", "form#pause-program"] : ["form#pause-program", "form#resume-program"];
      await submit(page, from);
      await page.locator(to).waitFor({ timeout: STEP_TIMEOUT });
      // Leave it as it was.
      await submit(page, to);
      await page.locator(from).waitFor({ timeout: STEP_TIMEOUT });
    },
  },
  {
    name: "dry-run a program over history",
    required: true,
    page: "@program",
    needs: ['main a[href$="/dry-run"]'],
    async run(page) {
      await Promise.all([page.waitForLoadState("load"), page.locator('main a[href$="/dry-run"]').first().click()]);
      await page.locator("form#dry-run").waitFor();
      // Two weeks of history (the form offers 90 days): enough to see sends, quick in a debug build.
      const to = await page.locator("form#dry-run input[name=to]").inputValue();
      const from = new Date(Date.parse(to) - 14 * 86_400_000).toISOString().slice(0, 10);
      await page.locator("form#dry-run input[name=from]").fill(from);
      await Promise.all([
        page.waitForNavigation({ timeout: 8 * STEP_TIMEOUT }),
        page.locator("form#dry-run button[type=submit]").click(),
      ]);
      await expectText(page, "main", "messages sent");
      await page.screenshot({ path: path.join(SHOTS, "program-dry-run.png"), fullPage: true });
      const violations = await axe(page);
      must(violations.length === 0, violations.map((v) => `axe ${v.impact}: ${v.id} — ${v.help}`).join("; "));
    },
  },
  {
    name: "try a rule in the segment rule box",
    required: true,
    page: "/segments",
    needs: ["textarea#rule[name=rule]", "#rule-check", "#rule-preview"],
    async run(page) {
      const box = page.locator("textarea#rule");
      await box.fill("");
      await box.pressSequentially("plan = 'enterprise'", { delay: 20 });
      await page.waitForFunction(() => /\d/.test(document.querySelector("#rule-preview")?.textContent || ""), null, { timeout: STEP_TIMEOUT });
      const good = (await page.locator("#rule-check").textContent()) || "";
      await box.fill("");
      await box.pressSequentially("plan = ", { delay: 20 });
      await page.waitForFunction(
        (before) => {
          const now = document.querySelector("#rule-check")?.textContent || "";
          return now !== before && /\d/.test(now);
        },
        good,
        { timeout: STEP_TIMEOUT },
      );
    },
  },
];

// ---------------------------------------------------------------------------------------

let passed = 0;
let failed = 0;
const failures = [];

function must(condition, message) {
  if (!condition) throw new Error(message);
}

function pass(name) {
  passed += 1;
  console.log(`ok    ${name}`);
}

function fail(name, problems) {
  failed += 1;
  failures.push(name);
  console.log(`FAIL  ${name}`);
  for (const p of [].concat(problems)) console.log(`      ${String(p).split("\n").join("\n      ")}`);
}

async function firstRealOption(select) {
  const values = await select.locator("option").evaluateAll((os) => os.map((o) => o.value).filter((v) => v !== ""));
  must(values.length > 0, "the select offers no option");
  return values[0];
}

/** Submits the first form matching `selector` with its submit button, and waits for the page it leads to. */
async function submit(page, selector) {
  const form = page.locator(selector).first();
  const button = form.locator('button[type=submit], input[type=submit], button:not([type])').first();
  await Promise.all([page.waitForNavigation({ timeout: STEP_TIMEOUT }), button.click()]);
}

async function expectText(page, selector, text) {
  await page.locator(selector).filter({ hasText: text }).first().waitFor({ timeout: STEP_TIMEOUT });
}

/** A contract item a page breaks: a failure when required, else a notice. */
function breach(problems, item, where) {
  const c = contract[item];
  if (STRICT || c.required) problems.push(`${c.what}: not on ${where}`);
  else console.log(`note  ${c.what}: not on ${where} yet`);
}

const isIcon = (url) => new URL(url).pathname === "/favicon.ico";

/** Watches a page: console errors, uncaught exceptions, failed requests. */
function watch(page) {
  const problems = [];
  const iconMissing = () => {
    if (!problems.iconNoted) breach(problems, "icon", new URL(page.url()).pathname);
    problems.iconNoted = true;
  };
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    if (m.location()?.url && isIcon(m.location().url)) return iconMissing();
    problems.push(`console error: ${m.text()} (${m.location()?.url || "?"})`);
  });
  page.on("pageerror", (e) => problems.push(`uncaught exception: ${e.message}`));
  page.on("requestfailed", (r) => problems.push(`request failed: ${r.method()} ${r.url()} (${r.failure()?.errorText})`));
  page.on("response", (r) => {
    if (r.status() < 400) return;
    if (isIcon(r.url())) return iconMissing();
    problems.push(`HTTP ${r.status()}: ${r.request().method()} ${r.url()}`);
  });
  return problems;
}

async function axe(page) {
  await page.evaluate(axeSource);
  const result = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")) }));
  });
  return result.filter((v) => v.impact === "serious" || v.impact === "critical");
}

function shotName(pathname) {
  const name = pathname.replace(/^\/+|\/+$/g, "").replace(/[^A-Za-z0-9_-]+/g, "-");
  return name === "" ? "home" : name;
}

async function signInIfAsked(page) {
  if (new URL(page.url()).pathname !== "/login") return;
  const email = process.env.CAIRN_EMAIL;
  const password = process.env.CAIRN_PASSWORD;
  must(email && password, "the UI asks to sign in (/login) but CAIRN_EMAIL and CAIRN_PASSWORD are not set");
  await page.locator("input[name=email]").fill(email);
  await page.locator("input[name=password]").fill(password);
  await submit(page, "form:has(input[name=password])");
  must(new URL(page.url()).pathname !== "/login", `signing in as ${email} failed: still on /login`);
}

async function visit(page, pathname) {
  const problems = watch(page);
  const response = await page.goto(BASE + pathname, { waitUntil: "load", timeout: STEP_TIMEOUT });
  await signInIfAsked(page);
  if (response && response.status() >= 400) problems.push(`HTTP ${response.status()} for the page itself`);
  return problems;
}

async function checkPage(context, pathname, label) {
  const page = await context.newPage();
  try {
    const problems = await visit(page, pathname);
    if ((await page.locator("main").count()) === 0 || (await page.locator("h1").count()) === 0) {
      breach(problems, "landmarks", pathname);
    }
    if ((await page.locator("nav#main-nav").count()) === 0) breach(problems, "nav", pathname);
    await page.screenshot({ path: path.join(SHOTS, `${shotName(label || pathname)}.png`), fullPage: true });
    for (const v of await axe(page)) problems.push(`axe ${v.impact}: ${v.id} — ${v.help} (${v.nodes.join(", ")})`);
    const links = await page.locator("#main-nav a[href]").evaluateAll((as) => as.map((a) => a.getAttribute("href")));
    const account = await page.locator('a[href^="/accounts/"]').first().getAttribute("href").catch(() => null);
    problems.length === 0 ? pass(`page ${pathname}`) : fail(`page ${pathname}`, problems);
    return { links, account };
  } catch (e) {
    fail(`page ${pathname}`, e.message);
    return { links: [], account: null };
  } finally {
    await page.close();
  }
}

async function resolveStart(context, start) {
  if (!start.startsWith("@")) return start;
  const [list, pattern] = start === "@account" ? ["/accounts", /^\/accounts\/[^/]+$/] : ["/programs", /^\/programs\/[^/]+$/];
  const page = await context.newPage();
  try {
    await page.goto(BASE + list, { waitUntil: "load", timeout: STEP_TIMEOUT });
    await signInIfAsked(page);
    const hrefs = await page.locator("main a[href]").evaluateAll((as) => as.map((a) => a.getAttribute("href")));
    return hrefs.find((h) => pattern.test(h || "")) || null;
  } finally {
    await page.close();
  }
}

async function interact(context, step) {
  const name = `interaction: ${step.name}`;
  const required = STRICT || step.required;
  const start = await resolveStart(context, step.page).catch(() => null);
  if (!start) {
    if (required) return fail(name, `no page to start from (${step.page})`);
    return console.log(`skip  ${name}: nothing links to ${step.page} yet`);
  }
  const page = await context.newPage();
  try {
    const problems = await visit(page, start);
    const absent = [];
    for (const sel of step.needs) if ((await page.locator(sel).count()) === 0) absent.push(sel);
    if (absent.length > 0) {
      if (required) return fail(name, `absent on ${start}: ${absent.join(", ")}`);
      return console.log(`skip  ${name}: ${absent.join(", ")} not on ${start} yet`);
    }
    await step.run(page);
    problems.length === 0 ? pass(name) : fail(name, problems);
  } catch (e) {
    fail(name, e.message);
  } finally {
    await page.close();
  }
}

const started = Date.now();
await mkdir(SHOTS, { recursive: true });
const profile = await mkdtemp(path.join(tmpdir(), "cairn-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  viewport: { width: 1440, height: 900 },
});
context.setDefaultTimeout(STEP_TIMEOUT);
try {
  // The home page, then every page its navigation links to, then one account.
  const home = await checkPage(context, "/", "home");
  const nav = [...new Set(home.links.filter((h) => h && h.startsWith("/") && h !== "/"))];
  if (home.links.length === 0) console.log("note  no #main-nav links on /, so only / is visited");
  let account = home.account;
  for (const href of nav) {
    const seen = await checkPage(context, href);
    account = account || seen.account;
  }
  if (account) await checkPage(context, account, "account");
  else console.log("skip  page /accounts/{id}: no page links to an account yet");
  for (const step of interactions) await interact(context, step);
} finally {
  await context.close();
  await rm(profile, { recursive: true, force: true });
}
console.log(`browser run: ${((Date.now() - started) / 1000).toFixed(1)} s, screenshots in ${SHOTS}`);
if (failures.length > 0) console.log(`failed: ${failures.join("; ")}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
