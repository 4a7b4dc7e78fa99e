// Checks the local API's /docs in a real headless browser (Debian's
// chromium, driven by playwright-core, which never downloads a browser):
// Swagger UI lists every operation, "try it out" is refused without a token
// (401) and works once a bearer token is entered in Authorize (201, 200).
//
//   USERS_API_URL=... USERS_API_TOKEN=... node build/docs-check.js \
//     [--screenshot FILE] OPERATION_ID...
import { chromium, type Page } from "playwright-core";

function fail(message: string): never {
  throw new Error(message);
}

const baseUrl = process.env.USERS_API_URL ?? fail("USERS_API_URL is not set");
const token = process.env.USERS_API_TOKEN ?? fail("USERS_API_TOKEN is not set");
const args = process.argv.slice(2);
const screenshotAt = args.indexOf("--screenshot");
const screenshot = screenshotAt >= 0 ? args.splice(screenshotAt, 2)[1] : undefined;
const operations = args;
if (operations.length === 0) fail("no operation ids given");

/** Runs an operation with "try it out" and returns the status Swagger UI shows. */
async function execute(page: Page, block: string): Promise<string> {
  const operation = page.locator(block);
  if (!(await operation.locator("button.execute").isVisible())) {
    await operation.locator(".opblock-summary").click();
  }
  await operation.locator("button.execute").click();
  const status = operation.locator(".live-responses-table tbody .response-col_status");
  await status.waitFor();
  const text = (await status.textContent())?.trim() ?? "";
  await operation.locator("button.btn-clear").click();
  return text;
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1400 } });
  await page.goto(`${baseUrl}/docs/`);
  const missing: string[] = [];
  for (const id of operations) {
    // Swagger UI gives each operation's block the id operations-<tag>-<operationId>.
    const block = page.locator(`[id^="operations-"][id$="-${id}"]`);
    try {
      await block.first().waitFor({ timeout: 15_000 });
    } catch {
      missing.push(id);
    }
  }
  if (missing.length > 0) fail(`/docs does not list ${missing.join(", ")}`);
  if (screenshot !== undefined) await page.screenshot({ path: screenshot });

  const list = "#operations-users-listUsers";
  const anonymous = await execute(page, list);
  if (anonymous !== "401") fail(`try it out without a token: ${anonymous}, expected 401`);

  await page.locator("button.authorize").first().click();
  await page.locator(".auth-container input").first().fill(token);
  await page.locator(".auth-btn-wrapper button.authorize").click();
  await page.locator("button.btn-done").click();
  const created = await execute(page, "#operations-users-createUser");
  if (created !== "201") fail(`try it out createUser: ${created}, expected 201`);
  const listed = await execute(page, list);
  if (listed !== "200") fail(`try it out listUsers: ${listed}, expected 200`);
  console.log(
    `/docs lists all ${operations.length} operations; try it out: 401 without a token, 201 and 200 with one`,
  );
} finally {
  await browser.close();
}
