// The generated corpus of IAM cases: a role's policies and one request (or
// a transaction's items, each authorised on its own), drawn from the shapes
// the stack's roles use and their near misses. Deterministic: the same seed
// gives the same cases, so a disagreement names a case that can be
// regenerated.
//
// A case expects a load error on our side when its policies use IAM our
// evaluator does not implement (it refuses those rather than guess); such
// cases are checked to be refused, never counted as agreement.

export const ACCOUNT = '000000000000'
const TABLE = `arn:aws:dynamodb:us-east-1:${ACCOUNT}:table/TABLE`
const STREAM = `${TABLE}/stream/2026-12-01T00:00:00.000`

// mulberry32: a small, well-known seeded generator.
function generator(seed) {
  let state = seed >>> 0
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const int = (n) => Math.floor(next() * n)
  const pick = (items) => items[int(items.length)]
  const some = (items, min, max) => {
    const count = min + int(max - min + 1)
    const out = []
    for (let i = 0; i < count; i++) out.push(pick(items))
    return [...new Set(out)]
  }
  return { next, int, pick, some, chance: (p) => next() < p }
}

const ITEM_ACTIONS = ['GetItem', 'PutItem', 'UpdateItem', 'DeleteItem', 'ConditionCheckItem']
const BATCH_ACTIONS = ['BatchGetItem', 'BatchWriteItem']
const READ_ACTIONS = ['Query', 'Scan']
const STREAM_ACTIONS = ['DescribeStream', 'GetRecords', 'GetShardIterator']
// Actions that only take `*` as their resource.
const WILDCARD_ACTIONS = ['DescribeEndpoints', 'ListStreams']
const TRANSACTION_ITEMS = ['PutItem', 'UpdateItem', 'DeleteItem', 'ConditionCheckItem']

// Requests: what a function's DynamoDB client can ask for, in our account.
const TABLE_RESOURCES = [
  TABLE,
  TABLE,
  `arn:aws:dynamodb:us-east-1:${ACCOUNT}:table/OTHER`,
  `arn:aws:dynamodb:us-east-1:${ACCOUNT}:table/TABLE2`,
  `arn:aws:dynamodb:us-east-1:${ACCOUNT}:table/TABL`,
  `arn:aws:dynamodb:us-east-1:${ACCOUNT}:table/table`,
  `arn:aws:dynamodb:eu-west-1:${ACCOUNT}:table/TABLE`
]
const INDEX_RESOURCES = [
  `${TABLE}/index/byEmail`,
  `${TABLE}/index/byCreation`,
  `arn:aws:dynamodb:us-east-1:${ACCOUNT}:table/OTHER/index/byEmail`
]
const STREAM_RESOURCES = [
  STREAM,
  `${TABLE}/stream/2026-12-02T10:11:12.131`,
  `arn:aws:dynamodb:us-east-1:${ACCOUNT}:table/OTHER/stream/2026-12-01T00:00:00.000`
]

// Leading keys as the functions write them, and near misses.
const KEYS = [
  'USER#01J0000000000000000000000',
  'USER#01JZZZZZZZZZZZZZZZZZZZZZZZ',
  'EMAIL#ada@example.com',
  'EMAIL#grace@example.org',
  'IDEMPOTENCY#caller#key-1',
  'user#01J0000000000000000000000',
  'USER',
  'USER#',
  'EMAIL#caf\u00e9@example.com',
  'USER#a*b',
  'USERS#1',
  ''
]

// Policy patterns.
const ACTION_PATTERNS = [
  ...ITEM_ACTIONS.map((a) => `dynamodb:${a}`),
  ...BATCH_ACTIONS.map((a) => `dynamodb:${a}`),
  ...READ_ACTIONS.map((a) => `dynamodb:${a}`),
  ...STREAM_ACTIONS.map((a) => `dynamodb:${a}`),
  ...WILDCARD_ACTIONS.map((a) => `dynamodb:${a}`),
  'dynamodb:*',
  'dynamodb:Get*',
  'dynamodb:*Item',
  'dynamodb:?etItem',
  'dynamodb:Get?tem',
  'dynamodb:Batch*',
  'dynamodb:Describe*',
  'dynamodb:*Stream*',
  'DynamoDB:getitem',
  'dynamodb:PUTITEM',
  'dynamodb:Query*',
  'logs:*',
  '*'
]
const RESOURCE_PATTERNS = [
  TABLE,
  TABLE,
  `${TABLE}/index/*`,
  `${TABLE}/index/byEmail`,
  `${TABLE}/stream/*`,
  `${TABLE}/*`,
  `${TABLE}*`,
  `arn:aws:dynamodb:us-east-1:${ACCOUNT}:table/*`,
  `arn:aws:dynamodb:us-east-1:${ACCOUNT}:table/TAB*`,
  `arn:aws:dynamodb:us-east-1:${ACCOUNT}:table/TABL?`,
  `arn:aws:dynamodb:us-east-1:${ACCOUNT}:table/T?BLE/index/by*`,
  `arn:aws:dynamodb:*:${ACCOUNT}:table/TABLE`,
  `arn:aws:dynamodb:*:*:table/TABLE`,
  `arn:aws:dynamodb:us-east-?:${ACCOUNT}:table/TABLE`,
  `arn:aws:dynamodb:us-east-1:*:table/TABLE/stream/*`,
  `arn:aws:dynamodb:us-east-1:${ACCOUNT}:table/OTHER`,
  `arn:aws:dynamodb:us-east-1:111111111111:table/TABLE`,
  `arn:aws:dynamodb:eu-west-1:${ACCOUNT}:table/TABLE`,
  `arn:aws:dynamodb:us-east-1:${ACCOUNT}:table/table`,
  'arn:aws:dynamodb:*',
  '*'
]
const KEY_PATTERNS = [
  'USER#*',
  'EMAIL#*',
  'IDEMPOTENCY#*',
  'USER#01J0000000000000000000000',
  'EMAIL#ada@example.com',
  'USER#?*',
  'USER#01J?????????????????????????',
  '*',
  '?*',
  'USER',
  'USER#a*b',
  '*@example.com',
  ''
]
const SET_OPERATORS = [
  'ForAllValues:StringLike',
  'ForAllValues:StringEquals',
  'ForAnyValue:StringLike',
  'ForAnyValue:StringEquals'
]

// Statements our evaluator refuses to load (it implements only what the
// stack uses); their cases expect a load error.
const UNSUPPORTED_STATEMENTS = [
  { Effect: 'Allow', NotAction: 'dynamodb:DeleteItem', Resource: TABLE },
  { Effect: 'Deny', Action: 'dynamodb:*', NotResource: TABLE },
  { Effect: 'Allow', Action: 'dynamodb:GetItem', Resource: TABLE, Condition: { StringEquals: { 'aws:SourceAccount': ACCOUNT } } },
  {
    Effect: 'Allow',
    Action: 'dynamodb:GetItem',
    Resource: TABLE,
    Condition: { 'ForAllValues:StringNotLike': { 'dynamodb:LeadingKeys': ['EMAIL#*'] } }
  },
  {
    Effect: 'Allow',
    Action: 'dynamodb:Query',
    Resource: TABLE,
    Condition: { 'ForAllValues:StringEquals': { 'dynamodb:Attributes': ['pk', 'sk'] } }
  },
  { Effect: 'Allow', Action: 'dynamodb:GetItem', Resource: TABLE, Condition: { Null: { 'dynamodb:LeadingKeys': 'false' } } },
  { Effect: 'Allow', Action: 'dynamodb:GetItem', Resource: TABLE, Principal: '*' }
]

function actionSpelling(g, action) {
  const name = `dynamodb:${action}`
  return g.pick([name, name, name, name.toLowerCase(), name.toUpperCase(), `DynamoDB:${action}`])
}

function requestFor(g) {
  const kind = g.pick(['item', 'item', 'item', 'batch', 'read', 'read', 'stream', 'wildcard'])
  let action
  let resource
  let keyed = false
  switch (kind) {
    case 'item':
      action = g.pick(ITEM_ACTIONS)
      resource = g.pick(TABLE_RESOURCES)
      keyed = true
      break
    case 'batch':
      action = g.pick(BATCH_ACTIONS)
      resource = g.pick(TABLE_RESOURCES)
      keyed = true
      break
    case 'read':
      action = g.pick(READ_ACTIONS)
      resource = g.pick([...TABLE_RESOURCES, ...INDEX_RESOURCES, ...INDEX_RESOURCES])
      keyed = action === 'Query'
      break
    case 'stream':
      action = g.pick(STREAM_ACTIONS)
      resource = g.pick(STREAM_RESOURCES)
      break
    default:
      action = g.pick(WILDCARD_ACTIONS)
      resource = '*'
  }
  return { action: actionSpelling(g, action), resource, context: keyed ? leadingKeys(g) : {} }
}

function leadingKeys(g) {
  const count = g.pick([0, 1, 1, 1, 2, 3])
  if (count === 0) return {}
  const keys = []
  for (let i = 0; i < count; i++) keys.push(g.pick(KEYS))
  return { 'dynamodb:LeadingKeys': [...new Set(keys)] }
}

function oneOrMany(g, items) {
  return items.length === 1 && g.chance(0.5) ? items[0] : items
}

function condition(g) {
  const block = {}
  for (const operator of g.some(SET_OPERATORS, 1, 2)) {
    block[operator] = { 'dynamodb:LeadingKeys': oneOrMany(g, g.some(KEY_PATTERNS, 1, 3)) }
  }
  return block
}

function statement(g) {
  const out = {}
  if (g.chance(0.3)) out.Sid = `S${g.int(100)}`
  out.Effect = g.chance(0.78) ? 'Allow' : 'Deny'
  out.Action = oneOrMany(g, g.some(ACTION_PATTERNS, 1, 3))
  out.Resource = oneOrMany(g, g.some(RESOURCE_PATTERNS, 1, 2))
  if (g.chance(0.55)) out.Condition = condition(g)
  return out
}

function policy(g, index, unsupported) {
  const statements = []
  const count = 1 + g.int(3)
  for (let i = 0; i < count; i++) statements.push(statement(g))
  if (unsupported) statements.splice(g.int(statements.length + 1), 0, g.pick(UNSUPPORTED_STATEMENTS))
  const document = {}
  if (g.chance(0.8)) document.Version = '2012-10-17'
  document.Statement = statements.length === 1 && g.chance(0.3) ? statements[0] : statements
  return { name: `policy-${index}`, document }
}

function policies(g, unsupported) {
  const count = 1 + g.int(3)
  const out = []
  const refusedAt = unsupported ? g.int(count) : -1
  for (let i = 0; i < count; i++) out.push(policy(g, i, i === refusedAt))
  return out
}

function transaction(g) {
  const items = []
  const count = 2 + g.int(3)
  const resource = g.chance(0.85) ? TABLE : g.pick(TABLE_RESOURCES)
  for (let i = 0; i < count; i++) {
    items.push({
      action: actionSpelling(g, g.pick(TRANSACTION_ITEMS)),
      // An item of another table now and then: each is authorised on its own table.
      resource: g.chance(0.1) ? g.pick(TABLE_RESOURCES) : resource,
      context: { 'dynamodb:LeadingKeys': [g.pick(KEYS)] }
    })
  }
  return items
}

/** `count` cases from `seed`: single requests, and transactions one case in six. */
export function generate(seed, count) {
  const g = generator(seed)
  const cases = []
  for (let i = 0; i < count; i++) {
    const unsupported = g.chance(0.05)
    const isTransaction = g.chance(1 / 6)
    cases.push({
      id: `${isTransaction ? 'transaction' : 'request'}-${seed}-${i}`,
      policies: policies(g, unsupported),
      requests: isTransaction ? transaction(g) : [requestFor(g)],
      expectLoadError: unsupported
    })
  }
  return cases
}
