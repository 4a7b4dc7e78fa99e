// Hand-written cases: the edges of IAM's rules where two evaluators are
// most likely to part, each named for what it checks.

import { ACCOUNT } from './corpus.mjs'

const TABLE = `arn:aws:dynamodb:us-east-1:${ACCOUNT}:table/TABLE`

function allow(action, resource, condition) {
  const statement = { Effect: 'Allow', Action: action, Resource: resource }
  if (condition) statement.Condition = condition
  return [{ name: 'policy', document: { Version: '2012-10-17', Statement: [statement] } }]
}

function get(keys, resource = TABLE, action = 'dynamodb:GetItem') {
  return { action, resource, context: keys === undefined ? {} : { 'dynamodb:LeadingKeys': keys } }
}

const userKeys = (operator) => ({ [operator]: { 'dynamodb:LeadingKeys': ['USER#*'] } })

export function fixedCases() {
  return [
    {
      id: 'for-all-values-holds-without-leading-keys',
      policies: allow('dynamodb:GetItem', TABLE, userKeys('ForAllValues:StringLike')),
      requests: [get(undefined)]
    },
    {
      id: 'for-any-value-fails-without-leading-keys',
      policies: allow('dynamodb:GetItem', TABLE, userKeys('ForAnyValue:StringLike')),
      requests: [get(undefined)]
    },
    {
      id: 'for-all-values-needs-every-key-to-match',
      policies: allow('dynamodb:GetItem', TABLE, userKeys('ForAllValues:StringLike')),
      requests: [get(['USER#1', 'EMAIL#a@b']), get(['USER#1', 'USER#2'])]
    },
    {
      id: 'for-any-value-needs-one-key-to-match',
      policies: allow('dynamodb:GetItem', TABLE, userKeys('ForAnyValue:StringLike')),
      requests: [get(['USER#1', 'EMAIL#a@b']), get(['EMAIL#a@b'])]
    },
    {
      id: 'string-equals-takes-wildcards-literally',
      policies: allow('dynamodb:GetItem', TABLE, userKeys('ForAllValues:StringEquals')),
      requests: [get(['USER#1']), get(['USER#*'])]
    },
    {
      id: 'string-like-is-case-sensitive',
      policies: allow('dynamodb:GetItem', TABLE, userKeys('ForAllValues:StringLike')),
      requests: [get(['user#1'])]
    },
    {
      id: 'a-deny-with-for-all-values-applies-without-leading-keys',
      policies: [
        ...allow('dynamodb:*', '*'),
        {
          name: 'deny',
          document: {
            Version: '2012-10-17',
            Statement: [{ Effect: 'Deny', Action: 'dynamodb:GetItem', Resource: TABLE, Condition: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['EMAIL#*'] } } }]
          }
        }
      ],
      requests: [get(undefined), get(['EMAIL#a@b']), get(['USER#1'])]
    },
    {
      id: 'a-transaction-is-authorised-item-by-item',
      policies: [
        {
          name: 'create-user',
          document: {
            Version: '2012-10-17',
            Statement: [
              { Effect: 'Allow', Action: 'dynamodb:PutItem', Resource: TABLE, Condition: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['USER#*', 'EMAIL#*'] } } },
              { Effect: 'Allow', Action: 'dynamodb:ConditionCheckItem', Resource: TABLE, Condition: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['USER#*'] } } }
            ]
          }
        }
      ],
      requests: [
        get(['USER#1'], TABLE, 'dynamodb:PutItem'),
        get(['EMAIL#a@b'], TABLE, 'dynamodb:PutItem'),
        get(['EMAIL#a@b'], TABLE, 'dynamodb:ConditionCheckItem'),
        get(['USER#1'], TABLE, 'dynamodb:DeleteItem')
      ]
    },
    {
      id: 'a-table-grant-covers-neither-its-indexes-nor-its-stream',
      policies: allow('dynamodb:*', TABLE),
      requests: [
        get(undefined, `${TABLE}/index/byEmail`, 'dynamodb:Query'),
        get(undefined, `${TABLE}/stream/2026-12-01T00:00:00.000`, 'dynamodb:GetRecords'),
        get(undefined, TABLE, 'dynamodb:Query')
      ]
    },
    {
      id: 'a-wildcard-only-action-needs-a-star-resource',
      policies: allow('dynamodb:*', `arn:aws:dynamodb:us-east-1:${ACCOUNT}:*`),
      requests: [get(undefined, '*', 'dynamodb:DescribeEndpoints'), get(undefined, '*', 'dynamodb:ListStreams')]
    },
    {
      id: 'actions-compare-case-insensitively',
      policies: allow(['DYNAMODB:GETITEM', 'dynamodb:put*'], TABLE),
      requests: [get(undefined, TABLE, 'dynamodb:getitem'), get(undefined, TABLE, 'DynamoDB:PutItem'), get(undefined, TABLE, 'dynamodb:UpdateItem')]
    },
    {
      id: 'resources-compare-case-sensitively',
      policies: allow('dynamodb:GetItem', `arn:aws:dynamodb:us-east-1:${ACCOUNT}:table/table`),
      requests: [get(undefined)]
    },
    {
      id: 'a-question-mark-is-exactly-one-character',
      policies: allow('dynamodb:GetItem', TABLE, { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['USER#?'] } }),
      requests: [get(['USER#1']), get(['USER#']), get(['USER#12']), get(['USER#\u00e9'])]
    },
    {
      id: 'a-star-in-a-leading-key-pattern-matches-a-line-break',
      policies: allow('dynamodb:GetItem', TABLE, userKeys('ForAllValues:StringLike')),
      requests: [get(['USER#a\nb'])]
    },
    {
      id: 'a-star-ending-an-arn-segment-matches-across-colons',
      policies: allow('dynamodb:GetItem', 'arn:aws:dynamodb:*:table/TABLE'),
      requests: [get(undefined)]
    },
    {
      id: 'a-star-inside-an-arn-segment-stays-in-it',
      policies: allow('dynamodb:GetItem', 'arn:aws:dynamodb:us-*0:table/TABLE'),
      requests: [get(undefined)]
    },
    {
      id: 'a-question-mark-in-an-arn-does-not-match-a-colon',
      policies: allow('dynamodb:GetItem', `arn:aws:dynamodb:us-east-1?${ACCOUNT}:table/TABLE`),
      requests: [get(undefined)]
    },
    {
      id: 'a-star-in-the-resource-segment-matches-a-slash',
      policies: allow('dynamodb:GetItem', `arn:aws:dynamodb:us-east-1:${ACCOUNT}:*/TABLE`),
      requests: [get(undefined)]
    },
    {
      id: 'a-final-star-matches-the-colons-of-a-stream-label',
      policies: allow('dynamodb:GetRecords', `${TABLE}/stream/*`),
      requests: [get(undefined, `${TABLE}/stream/2026-12-02T10:11:12.131`, 'dynamodb:GetRecords')]
    },
    {
      id: 'a-policy-variable-in-a-resource-is-refused',
      policies: allow('dynamodb:GetItem', `arn:aws:dynamodb:us-east-1:${ACCOUNT}:table/\${aws:username}`),
      requests: [get(undefined)],
      expectLoadError: true
    },
    {
      id: 'a-policy-variable-is-refused',
      policies: allow('dynamodb:GetItem', TABLE, { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['USER#${aws:userid}'] } }),
      requests: [get(['USER#1'])],
      expectLoadError: true
    }
  ]
}
