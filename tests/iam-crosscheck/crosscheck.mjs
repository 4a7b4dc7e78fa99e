// Holds the local API's IAM evaluator (infra/local-api/src/iam) against an
// independent one, @cloud-copilot/iam-simulate: every case of the corpus
// (hand-written edge cases, fixed-cases.mjs, and generated ones,
// corpus.mjs) and of the suite's IAM record (each recorded request under
// its function's real role) is decided by both, and any disagreement fails
// naming the case. known-differences.json lists the cases where the other
// evaluator contradicts the AWS documentation; exactly those are expected.
//
// usage: node crosscheck.mjs --local-api <local-api binary> [--record <IAM record>]
//                            [--seed N] [--count N]

import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'

import { runSimulation } from '@cloud-copilot/iam-simulate'

import { ACCOUNT, generate } from './corpus.mjs'
import { fixedCases } from './fixed-cases.mjs'

// iam-simulate's names for our Decision's variants.
const NAMES = { Allowed: 'Allowed', ImplicitlyDenied: 'ImplicitDeny', ExplicitlyDenied: 'ExplicitDeny' }

const here = new URL('.', import.meta.url).pathname
const { values: args } = parseArgs({
  options: {
    'local-api': { type: 'string' },
    record: { type: 'string' },
    seed: { type: 'string', default: '19' },
    count: { type: 'string', default: '1500' }
  }
})
if (!args['local-api']) {
  console.error('usage: node crosscheck.mjs --local-api <binary> [--record <file>] [--seed N] [--count N]')
  process.exit(2)
}
const started = Date.now()

const cases = [...fixedCases(), ...generate(Number(args.seed), Number(args.count))]
if (args.record) {
  const lines = execFileSync(args['local-api'], ['iam-cases', args.record], { encoding: 'utf8', maxBuffer: 1 << 30 })
  cases.push(...jsonLines(lines))
}
const ids = new Set()
for (const c of cases) {
  if (ids.has(c.id)) throw new Error(`two cases are named ${c.id}`)
  ids.add(c.id)
}

const ours = decideOurs(cases)
const known = new Map(
  JSON.parse(readFileSync(join(here, 'known-differences.json'), 'utf8')).map((k) => [k.id, k])
)

const problems = []
let requests = 0
let refused = 0
let fromRecord = 0
let disagreements = 0
const tally = { Allowed: 0, ImplicitDeny: 0, ExplicitDeny: 0 }
const expected = new Set()
for (const c of cases) {
  const answer = ours.get(c.id)
  if (c.recorded !== undefined) fromRecord++
  if (c.expectLoadError) {
    if (answer.load_error) refused++
    else problems.push(`${c.id}: our evaluator loaded policies it does not implement (it must refuse them)\n${show(c)}`)
    continue
  }
  if (answer.load_error) {
    problems.push(`${c.id}: our evaluator refused the policies: ${answer.load_error}\n${show(c)}`)
    continue
  }
  requests += c.requests.length
  for (const d of answer.decisions) tally[d]++
  if (c.recorded !== undefined) {
    const allowed = answer.decisions.every((d) => d === 'Allowed')
    if (allowed !== c.recorded) {
      problems.push(`${c.id}: the IAM record says ${c.recorded ? 'allowed' : 'refused'}, our evaluator now says ${answer.decisions}\n${show(c)}`)
    }
  }
  const theirs = []
  for (const request of c.requests) theirs.push(await decideTheirs(c, request))
  const same = theirs.every((d, i) => d === answer.decisions[i])
  const difference = known.get(c.id)
  if (difference) {
    if (!same && sameList(difference.ours, answer.decisions) && sameList(difference.theirs, theirs)) {
      expected.add(c.id)
      continue
    }
    problems.push(
      `${c.id}: listed in known-differences.json as ours ${difference.ours} / iam-simulate ${difference.theirs}, ` +
        `but now ours ${answer.decisions} / iam-simulate ${theirs}: update or remove the entry\n${show(c)}`
    )
    continue
  }
  if (!same) {
    disagreements++
    problems.push(`${c.id}: ours ${answer.decisions}, iam-simulate ${theirs}\n${show(c)}`)
  }
}
for (const id of known.keys()) {
  if (!ids.has(id)) problems.push(`${id}: listed in known-differences.json, but no case has that id`)
}

for (const problem of problems) console.log(`error: ${problem}`)
const seconds = ((Date.now() - started) / 1000).toFixed(1)
console.log(
  `iam cross-check: ${cases.length} cases (${requests} requests: ${tally.Allowed} allowed, ` +
    `${tally.ImplicitDeny} implicitly and ${tally.ExplicitDeny} explicitly denied; ${fromRecord} cases from the IAM record), ` +
    `${disagreements} disagreements, ${expected.size} known differences, ` +
    `${refused} refused as unsupported, ${problems.length} problems, ${seconds} s`
)
process.exit(problems.length === 0 ? 0 : 1)

function jsonLines(text) {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line))
}

function decideOurs(all) {
  const dir = mkdtempSync(join(tmpdir(), 'iam-crosscheck-'))
  try {
    const file = join(dir, 'cases.jsonl')
    writeFileSync(file, all.map((c) => JSON.stringify(c)).join('\n') + '\n')
    const out = execFileSync(args['local-api'], ['iam-decide', file], { encoding: 'utf8', maxBuffer: 1 << 30 })
    const answers = new Map(jsonLines(out).map((a) => [a.id, a]))
    for (const c of all) {
      if (!answers.has(c.id)) throw new Error(`local-api iam-decide gave no answer for ${c.id}`)
    }
    return answers
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

async function decideTheirs(c, request) {
  const resourceAccount = request.resource === '*' ? ACCOUNT : request.resource.split(':')[4]
  const simulation = {
    request: {
      principal: `arn:aws:sts::${ACCOUNT}:assumed-role/CrossCheckRole/function`,
      action: request.action,
      resource: { resource: request.resource, accountId: resourceAccount },
      contextVariables: request.context ?? {}
    },
    identityPolicies: c.policies.map((p) => ({ name: p.name, policy: p.document })),
    serviceControlPolicies: [],
    resourceControlPolicies: []
  }
  const result = await runSimulation(simulation, {})
  const name = NAMES[result.overallResult]
  if (result.resultType === 'error' || !name) {
    throw new Error(`iam-simulate could not evaluate ${c.id}: ${JSON.stringify(result.errors ?? result)}\n${show(c)}`)
  }
  return name
}

function sameList(a, b) {
  return Array.isArray(a) && a.length === b.length && a.every((x, i) => x === b[i])
}

function show(c) {
  return `  requests: ${JSON.stringify(c.requests)}\n  policies: ${JSON.stringify(c.policies)}`
}
