// The body of POST /users as the seed validated it: a strict Zod object
// with the same rules as the Rust API's Email and UserName.
"use strict";

const { z } = require("zod");

const CONTROL = /\p{Cc}/u;
const EMAIL_FORMAT = z.email();

const email = z
  .string()
  .trim()
  .toLowerCase()
  .check(
    z.refine((v) => v.length <= 254, "must be at most 254 characters"),
    z.refine((v) => !/\s|\p{Cc}/u.test(v), "must not contain whitespace or control characters"),
    z.refine((v) => EMAIL_FORMAT.safeParse(v).success, "must be a valid email address such as ada@example.com"),
    z.refine((v) => v.split("@")[0].length <= 64, "must have at most 64 characters before the @"),
  );
const name = z
  .string()
  .trim()
  .check(
    z.refine((v) => !CONTROL.test(v), "must not contain control characters"),
    z.refine((v) => [...v].length >= 2, "must be at least 2 characters"),
    z.refine((v) => [...v].length <= 100, "must be at most 100 characters"),
  );
const NewUser = z.strictObject({ email, name });

module.exports = { NewUser };
