// Drives the shardex explorer page in headless Chromium and checks what a person would see:
//   1. the page loads and shows one card per shard (SHARDS of them);
//   2. it updates by itself: some shard's height grows while the page stays open;
//   3. a trade appears, and clicking its taker looks the account up on every shard, each marked verified;
//   4. the coordinator's epochs and (with --bridge) the bridge's messages are listed.
// Then it writes a full-page screenshot and prints one JSON line of what it saw.
//
// usage: node check.mjs URL SHARDS SCREENSHOT [--bridge]
// Chromium: $SHARDEX_CHROMIUM, or /usr/bin/chromium (scripts/browser-setup.sh installs it).
import { chromium } from "playwright-core";

const [url, shardsArg, screenshot, ...flags] = process.argv.slice(2);
if (!url || !shardsArg || !screenshot) {
  console.error("usage: node check.mjs URL SHARDS SCREENSHOT [--bridge]");
  process.exit(2);
}
const shards = Number(shardsArg);
const wantBridge = flags.includes("--bridge");
const TIMEOUT = 30_000;

const browser = await chromium.launch({
  executablePath: process.env.SHARDEX_CHROMIUM || "/usr/bin/chromium",
  // A closed network: no background fetches, no component updates, no sync.
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const fail = async (page, what) => {
  if (page) await page.screenshot({ path: screenshot, fullPage: true }).catch(() => {});
  console.error(`explorer check failed: ${what}`);
  await browser.close();
  process.exit(1);
};

const page = await browser.newPage({ viewport: { width: 1800, height: 1000 } });
const errors = [];
page.on("pageerror", (e) => errors.push(e.message));
const response = await page.goto(url, { waitUntil: "load", timeout: TIMEOUT });
if (!response || response.status() !== 200) await fail(page, `GET ${url} answered ${response?.status()}`);
if ((await page.title()) !== "shardex explorer") await fail(page, `title is ${await page.title()}`);

// 1. One card per shard.
try {
  await page.waitForFunction((n) => document.querySelectorAll("[data-testid=shard]").length === n, shards,
    { timeout: TIMEOUT });
} catch {
  await fail(page, `expected ${shards} shard cards, saw ${await page.locator("[data-testid=shard]").count()}`);
}
const heights = async () => page.$$eval("[data-testid=shard] [data-testid=height]",
  (els) => els.map((e) => Number(e.textContent) || 0));
const first = await heights();

// 2. The page updates by itself: some shard's height grows.
try {
  await page.waitForFunction((before) => {
    const now = [...document.querySelectorAll("[data-testid=shard] [data-testid=height]")]
      .map((e) => Number(e.textContent) || 0);
    return now.some((h, i) => h > before[i]);
  }, first, { timeout: TIMEOUT });
} catch {
  await fail(page, `no shard's height grew from ${JSON.stringify(first)} in ${TIMEOUT} ms`);
}
const later = await heights();

// 3. A trade appears; its taker is looked up on every shard and verified by proofs.
try {
  await page.waitForSelector("[data-testid=trade] a.account", { timeout: TIMEOUT });
} catch {
  await fail(page, "no trade appeared");
}
const trades = await page.locator("[data-testid=trade]").count();
const account = await page.locator("[data-testid=trade] a.account").first().getAttribute("data-account");
await page.locator("[data-testid=trade] a.account").first().click();
try {
  await page.waitForFunction((n) => document.querySelectorAll("[data-testid=account-shard]").length === n, shards,
    { timeout: TIMEOUT });
} catch {
  await fail(page, `the account lookup did not list ${shards} shards: ${await page.locator("#account-result").innerText()}`);
}
const marks = await page.$$eval("[data-testid=account-shard] [data-testid=verified]", (els) => els.map((e) => e.textContent));
if (!marks.every((m) => m.includes("✓ verified"))) {
  await fail(page, `not every shard verified: ${JSON.stringify(marks)}: ${await page.locator("#account-result").innerText()}`);
}

// 4. Epochs (signed under the configured key) and, with the bridge, messages.
try {
  await page.waitForSelector("[data-testid=epoch] .verified", { timeout: TIMEOUT });
} catch {
  await fail(page, "no verified epoch listed");
}
const epochs = await page.locator("[data-testid=epoch]").count();
let messages = 0;
if (wantBridge) {
  try {
    await page.waitForSelector("[data-testid=message]", { timeout: TIMEOUT });
  } catch {
    await fail(page, "no bridge message listed");
  }
  messages = await page.locator("[data-testid=message]").count();
}
if (errors.length) await fail(page, `script errors on the page: ${errors.join("; ")}`);

await page.screenshot({ path: screenshot, fullPage: true });
console.log(JSON.stringify({ shards, first, later, trades, account, verified: marks.length, epochs, messages }));
await browser.close();
