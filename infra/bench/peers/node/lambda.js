// The create-user function in Node.js, as a cold-start peer: the same
// validation (Zod, as the seed) and the same DynamoDB transaction as the Rust
// function (the user and its email claim, each a conditional put), on
// @aws-sdk/client-dynamodb v3 with the client built at init.
//
// aws-lambda-ric (npm) needs cmake and a native build, so this file carries
// a minimal Runtime API loop instead: GET next, call the handler, POST the
// response, as Lambda's own Node.js bootstrap does.
"use strict";

const http = require("node:http");
const { DynamoDBClient, TransactWriteItemsCommand } = require("@aws-sdk/client-dynamodb");
const { ulid } = require("ulid");
const { NewUser } = require("./schema");

const TABLE = process.env.TABLE_NAME;
const client = new DynamoDBClient({});
const SECURITY_HEADERS = {
  "strict-transport-security": "max-age=31536000; includeSubDomains",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
  "referrer-policy": "no-referrer",
  "cross-origin-resource-policy": "same-origin",
  "cache-control": "no-store",
};

function problem(requestId, status, type, title, detail, errors) {
  const body = { type: `/problems/${type}`, title, status, detail, requestId };
  if (errors) body.errors = errors;
  return { statusCode: status, headers: { ...SECURITY_HEADERS, "content-type": "application/problem+json" }, body: JSON.stringify(body) };
}

async function handler(event) {
  const requestId = event.requestContext?.requestId ?? "";
  const essence = (event.headers?.["content-type"] ?? "").split(";")[0].trim().toLowerCase();
  if (essence !== "application/json") {
    return problem(requestId, 415, "unsupported-media-type", "Unsupported Media Type", "The request body must be sent as application/json.");
  }
  const raw = event.isBase64Encoded ? Buffer.from(event.body ?? "", "base64").toString() : (event.body ?? "");
  if (Buffer.byteLength(raw) > 16 * 1024) {
    return problem(requestId, 413, "payload-too-large", "Payload Too Large", "The request body must be at most 16384 bytes.");
  }
  let body;
  try {
    body = JSON.parse(raw);
  } catch {
    return problem(requestId, 400, "bad-request", "Bad Request", "The request body is not valid JSON.");
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    return problem(requestId, 400, "bad-request", "Bad Request", "The request body must be a JSON object.");
  }
  const parsed = NewUser.safeParse(body);
  if (!parsed.success) {
    const errors = parsed.error.issues.map((i) => ({ field: String(i.path[0] ?? "body"), message: i.message }));
    return problem(requestId, 422, "validation-failed", "Validation Failed", "One or more fields are invalid.", errors);
  }
  const now = new Date().toISOString();
  const user = { id: ulid(), email: parsed.data.email, name: parsed.data.name, createdAt: now, updatedAt: now, version: 1 };
  const userItem = {
    pk: { S: `USER#${user.id}` }, sk: { S: "PROFILE" }, gsi1pk: { S: "USERS" }, gsi1sk: { S: user.id },
    id: { S: user.id }, email: { S: user.email }, name: { S: user.name },
    createdAt: { S: now }, updatedAt: { S: now }, version: { N: "1" },
  };
  const claim = { pk: { S: `EMAIL#${user.email}` }, sk: { S: "EMAIL" }, userId: { S: user.id } };
  try {
    await client.send(new TransactWriteItemsCommand({
      TransactItems: [
        { Put: { TableName: TABLE, Item: userItem, ConditionExpression: "attribute_not_exists(pk)" } },
        { Put: { TableName: TABLE, Item: claim, ConditionExpression: "attribute_not_exists(pk)" } },
      ],
    }));
  } catch (error) {
    if (error.name === "TransactionCanceledException" && error.CancellationReasons?.[1]?.Code === "ConditionalCheckFailed") {
      return problem(requestId, 409, "email-taken", "Email Taken", "The email address belongs to another user.");
    }
    console.error(JSON.stringify({ level: "ERROR", message: "request failed", error: String(error) }));
    return problem(requestId, 503, "service-unavailable", "Service Unavailable", "The service is busy; retry after the time given in Retry-After.");
  }
  console.log(JSON.stringify({ level: "INFO", message: "request", request_id: requestId, method: "POST", route: "POST /users", status: 201, user_id: user.id }));
  return {
    statusCode: 201,
    headers: { ...SECURITY_HEADERS, "content-type": "application/json", location: `/users/${user.id}`, etag: '"1"' },
    body: JSON.stringify(user),
  };
}

const [host, port] = process.env.AWS_LAMBDA_RUNTIME_API.split(":");
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function call(method, path, body) {
  return new Promise((resolve, reject) => {
    const request = http.request({ host, port, method, path: `/2018-06-01/runtime/${path}`, agent }, (response) => {
      const chunks = [];
      response.on("data", (chunk) => chunks.push(chunk));
      response.on("end", () => resolve({ headers: response.headers, body: Buffer.concat(chunks).toString() }));
    });
    request.on("error", reject);
    if (body !== undefined) request.setHeader("content-type", "application/json");
    request.end(body);
  });
}

(async () => {
  for (;;) {
    const next = await call("GET", "invocation/next");
    const id = next.headers["lambda-runtime-aws-request-id"];
    try {
      const result = await handler(JSON.parse(next.body));
      await call("POST", `invocation/${id}/response`, JSON.stringify(result));
    } catch (error) {
      await call("POST", `invocation/${id}/error`, JSON.stringify({ errorType: error.name, errorMessage: String(error) }));
    }
  }
})();
