// The seed's Node.js service, as a benchmark peer: Express + helmet + Zod on
// an in-memory store, serving POST /users and GET /users/:id with the same
// validation, status codes, headers and problem+json errors as the Rust API
// (see docs/api.md). One JSON log line per request, as ours.
"use strict";

const express = require("express");
const helmet = require("helmet").default;
const { NewUser } = require("./schema");
const { ulid } = require("ulid");

const MAX_BODY = "16kb";
const ULID = /^[0-7][0-9A-HJKMNP-TV-Z]{25}$/i;

const users = new Map();
const emails = new Map();

function problem(res, status, type, title, detail, errors) {
  const body = { type: `/problems/${type}`, title, status, detail, requestId: res.locals.requestId };
  if (errors) body.errors = errors;
  res.status(status).type("application/problem+json").set("cache-control", "no-store").send(JSON.stringify(body));
}

const app = express();
app.disable("x-powered-by");
app.disable("etag");
app.use(helmet());
app.use((req, res, next) => {
  const started = process.hrtime.bigint();
  res.locals.requestId = ulid();
  res.on("finish", () => {
    console.log(JSON.stringify({
      level: "INFO", message: "request", request_id: res.locals.requestId, method: req.method,
      route: req.route ? `${req.method} ${req.route.path}` : "", status: res.statusCode,
      latency_us: Number((process.hrtime.bigint() - started) / 1000n), user_id: res.locals.userId,
    }));
  });
  next();
});

app.post(
  "/users",
  (req, res, next) => {
    const essence = (req.get("content-type") || "").split(";")[0].trim().toLowerCase();
    if (essence !== "application/json") {
      return problem(res, 415, "unsupported-media-type", "Unsupported Media Type", "The request body must be sent as application/json.");
    }
    next();
  },
  express.json({ limit: MAX_BODY, strict: false }),
  (req, res) => {
    if (typeof req.body !== "object" || req.body === null || Array.isArray(req.body)) {
      return problem(res, 400, "bad-request", "Bad Request", "The request body must be a JSON object.");
    }
    const parsed = NewUser.safeParse(req.body);
    if (!parsed.success) {
      const errors = parsed.error.issues.map((issue) => ({
        field: issue.code === "unrecognized_keys" ? issue.keys[0] : String(issue.path[0] ?? "body"),
        message: issue.code === "invalid_type" ? "must be a string" : issue.message,
      }));
      return problem(res, 422, "validation-failed", "Validation Failed", "One or more fields are invalid.", errors);
    }
    const { email, name } = parsed.data;
    if (emails.has(email)) {
      return problem(res, 409, "email-taken", "Email Taken", "The email address belongs to another user.");
    }
    const now = new Date().toISOString();
    const user = { id: ulid(), email, name, createdAt: now, updatedAt: now, version: 1 };
    users.set(user.id, user);
    emails.set(email, user.id);
    res.locals.userId = user.id;
    res.status(201).set({ location: `/users/${user.id}`, etag: '"1"', "cache-control": "no-store" }).json(user);
  },
);

app.get("/users/:id", (req, res) => {
  const id = req.params.id;
  if (!ULID.test(id)) {
    return problem(res, 400, "bad-request", "Bad Request", "The id in the path must be a ULID.");
  }
  const user = users.get(id.toUpperCase());
  if (!user) {
    return problem(res, 404, "not-found", "Not Found", "No resource exists at this address.");
  }
  res.locals.userId = user.id;
  const etag = `"${user.version}"`;
  res.set({ etag, "cache-control": "private, no-cache" });
  const cached = req.get("if-none-match");
  if (cached && (cached.trim() === "*" || cached.split(",").some((t) => t.trim().replace(/^W\//, "") === etag))) {
    return res.status(304).end();
  }
  res.status(200).json(user);
});

app.use((req, res) => {
  res.status(404).json({ message: "Not Found" });
});

app.use((err, req, res, _next) => {
  if (err.type === "entity.too.large") {
    return problem(res, 413, "payload-too-large", "Payload Too Large", "The request body must be at most 16384 bytes.");
  }
  if (err.type === "entity.parse.failed") {
    return problem(res, 400, "bad-request", "Bad Request", "The request body is not valid JSON.");
  }
  console.error(err);
  problem(res, 500, "internal-error", "Internal Server Error", "The request could not be completed.");
});

const port = Number(process.env.PORT || 3001);
app.listen(port, "127.0.0.1", () => console.log(JSON.stringify({ message: "listening", port })));
