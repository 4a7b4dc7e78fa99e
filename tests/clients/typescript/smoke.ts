// Drives a running users API through the types openapi-typescript generates
// from openapi.yaml and openapi-fetch: create, conditional get (304), patch
// with If-Match, a 409 and a 422 read as typed problems, list with a
// cursor, delete. Exits non-zero at the first surprise.
//
//   USERS_API_URL=http://127.0.0.1:3000 USERS_API_TOKEN=... node build/smoke.js
import createClient from "openapi-fetch";
import type { components, paths } from "./generated/api.js";

type User = components["schemas"]["User"];
type Problem = components["schemas"]["Problem"];

function fail(message: string): never {
  throw new Error(message);
}

function check(condition: boolean, message: string): void {
  if (!condition) fail(message);
}

/** `error` as a problem document, if it is one (API Gateway writes `{message}`). */
function problem(error: unknown): Problem | undefined {
  return typeof error === "object" && error !== null && "type" in error
    ? (error as Problem)
    : undefined;
}

const baseUrl = process.env.USERS_API_URL ?? fail("USERS_API_URL is not set");
const token = process.env.USERS_API_TOKEN ?? fail("USERS_API_TOKEN is not set");
const client = createClient<paths>({
  baseUrl,
  headers: { Authorization: `Bearer ${token}` },
});
const run = crypto.randomUUID().slice(0, 8);

// Create.
const created = await client.POST("/users", {
  body: { email: `ts-${run}@example.com`, name: "Ada Lovelace" },
});
check(created.response.status === 201, `create: status ${created.response.status}`);
const user: User = created.data ?? fail("create: no body");
const etag = created.response.headers.get("ETag") ?? fail("create: no ETag");
check(user.version === 1, `create: version ${user.version}`);

// Get while current: 304, no body.
const notModified = await client.GET("/users/{id}", {
  params: { path: { id: user.id }, header: { "If-None-Match": etag } },
});
check(notModified.response.status === 304, `get: status ${notModified.response.status}`);

// Patch that version.
const patched = await client.PATCH("/users/{id}", {
  params: { path: { id: user.id }, header: { "If-Match": etag } },
  body: { name: "Countess of Lovelace" },
  headers: { "Content-Type": "application/merge-patch+json" },
});
check(patched.response.status === 200, `patch: status ${patched.response.status}`);
check(patched.data?.name === "Countess of Lovelace", "patch: name unchanged");
check(patched.data?.version === 2, `patch: version ${patched.data?.version}`);
const patchedEtag = patched.response.headers.get("ETag") ?? fail("patch: no ETag");

// 409: the email address is taken.
const taken = await client.POST("/users", {
  body: { email: user.email, name: "Someone Else" },
});
const conflict = problem(taken.error);
check(taken.response.status === 409, `conflict: status ${taken.response.status}`);
check(conflict?.type === "/problems/email-taken", `conflict: ${JSON.stringify(taken.error)}`);

// 422: every invalid field is listed.
const invalid = await client.POST("/users", {
  body: { email: "not an address", name: "A" },
});
const validation = problem(invalid.error);
check(invalid.response.status === 422, `invalid: status ${invalid.response.status}`);
check(validation?.type === "/problems/validation-failed", `invalid: ${JSON.stringify(invalid.error)}`);
const fields = (validation?.errors ?? []).map((e) => e.field).sort();
check(JSON.stringify(fields) === '["email","name"]', `invalid: fields ${fields}`);

// List page by page until this run's user shows up.
const second = await client.POST("/users", {
  body: { email: `ts-${run}-2@example.com`, name: "Charles Babbage" },
});
check(second.response.status === 201, `second create: status ${second.response.status}`);
let cursor: string | undefined;
let pages = 0;
const seen = new Set<string>();
do {
  const page = await client.GET("/users", {
    params: { query: cursor === undefined ? { limit: 1 } : { limit: 1, cursor } },
  });
  const body = page.data ?? fail(`list: status ${page.response.status}`);
  check(body.items.length <= 1, `list: ${body.items.length} items for limit 1`);
  body.items.forEach((item) => seen.add(item.id));
  cursor = body.nextCursor ?? undefined;
  pages += 1;
} while (cursor !== undefined && pages < 1000);
check(pages >= 2, `list: ${pages} page(s), expected a cursor to follow`);
check(seen.has(user.id) && seen.has(second.data?.id ?? ""), "list: this run's users are missing");

// Delete that version; then it is gone.
for (const [id, version] of [
  [user.id, patchedEtag],
  [second.data?.id ?? "", second.response.headers.get("ETag") ?? ""],
] as const) {
  const deleted = await client.DELETE("/users/{id}", {
    params: { path: { id }, header: { "If-Match": version } },
  });
  check(deleted.response.status === 204, `delete: status ${deleted.response.status}`);
}
const gone = await client.GET("/users/{id}", { params: { path: { id: user.id } } });
check(gone.response.status === 404, `get after delete: status ${gone.response.status}`);
check(problem(gone.error)?.type === "/problems/not-found", "get after delete: not a not-found problem");

console.log(`typescript client: all steps passed (${pages} list pages)`);
