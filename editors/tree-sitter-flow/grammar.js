// A tree-sitter grammar for nurture's `.flow` programs: for highlighting
// and structure in editors. `nurture check` stays the judge of what is
// valid; this grammar accepts what the examples hold and recovers from the
// rest as tree-sitter does.

const PREC = {
  or: 1,
  and: 2,
  not: 3,
  compare: 4,
  coalesce: 5,
  add: 6,
  mul: 7,
  neg: 8,
};

module.exports = grammar({
  name: 'flow',

  extras: $ => [/\s/, $.comment],

  word: $ => $.identifier,

  conflicts: $ => [
    [$.exit_when, $.exit],
  ],

  rules: {
    source_file: $ => repeat($._item),

    _item: $ => choice(
      $.contact_block,
      $.event_declaration,
      $.workflow,
      $.test_block,
      $.timezone_declaration,
      $.quiet_hours,
      $.limit_declaration,
    ),

    comment: _ => token(seq('//', /.*/)),

    // ---------------------------------------------------------------- schema

    contact_block: $ => seq('contact', '{', repeat($.field_declaration), '}'),

    field_declaration: $ => seq(
      field('name', $.identifier), ':', $.type,
      repeat(choice($.annotation, seq('=', $._expression))),
      optional(','),
    ),

    type: $ => seq(
      choice(
        seq($.string, repeat(seq('|', $.string))),
        seq(choice('set', 'list'), '<', $.type, '>'),
        $.primitive_type,
      ),
      optional('?'),
    ),

    primitive_type: _ => choice('string', 'int', 'float', 'bool', 'datetime', 'duration'),

    annotation: $ => seq('@', field('name', $.identifier),
      optional(seq('(', commaSep1($.identifier), ')'))),

    event_declaration: $ => seq('event', field('name', $.identifier), '{',
      optional(seq($.payload_field, repeat(seq(optional(','), $.payload_field)), optional(','))),
      '}'),

    payload_field: $ => seq(field('name', $.identifier), ':', $.type),

    timezone_declaration: $ => seq('timezone', $.string),

    quiet_hours: $ => seq('quiet', 'hours', $.clock_time, 'to', $.clock_time,
      optional(seq('for', commaSep1($.identifier)))),

    limit_declaration: $ => seq('limit', $.identifier, 'to', $.integer, 'per', $.duration),

    // ------------------------------------------------------------- workflows

    workflow: $ => seq('workflow', field('name', $.identifier), '{',
      repeat(choice($._header, $._statement)), '}'),

    _header: $ => choice($.trigger, $.goal, $.exit_when, $.reenter, $.on_change),

    trigger: $ => seq('when', choice(
      seq('inactive', 'for', $.duration),
      seq('every', choice('day', $.weekday, seq('month', 'on', $.integer),
        seq('year', 'on', $.path)), 'at', $.clock_time, optional($.where_clause)),
      seq('at', $._expression),
      prec(1, seq(field('event', $.identifier), optional($.where_clause))),
      $._expression,
    )),

    where_clause: $ => seq('where', $._expression),

    goal: $ => seq('goal', choice(
      prec(1, seq($.identifier, optional($.where_clause))), $._expression)),

    exit_when: $ => seq('exit', 'when', choice(
      prec(1, seq($.identifier, optional($.where_clause))), $._expression)),

    reenter: $ => seq('reenter', choice('never', 'always', seq('after', $.duration))),
    on_change: $ => seq('on', 'change', choice('exit', 'finish')),

    block: $ => seq('{', repeat($._statement), '}'),

    _statement: $ => choice(
      $.send, $.tag, $.untag, $.set, $.list_action, $.notify, $.webhook,
      $.wait_for, $.wait, $.if, $.split, $.stage, $.exit, $.convert,
    ),

    send: $ => seq('send', field('channel', $.identifier), $.string,
      optional($.with_clause), optional('transactional')),

    with_clause: $ => seq('with', $.record),

    record: $ => seq('{', optional(seq(commaSep1($.entry), optional(','))), '}'),

    entry: $ => seq(field('key', $.identifier), ':', $._expression),

    tag: $ => seq('tag', $._expression),
    untag: $ => seq('untag', $._expression),

    set: $ => seq('set', $.path, choice('=', '+=', '-='), $._expression),

    list_action: $ => choice(
      seq('add', 'to', choice('list', 'audience'), $.string),
      seq('remove', 'from', 'list', $.string),
    ),

    notify: $ => seq('notify', $.string, $.string),

    webhook: $ => seq('webhook', $.string, optional($.with_clause)),

    wait: $ => seq('wait', choice(
      seq('until', choice($.clock_time, seq($.weekday, optional(seq('at', $.clock_time))), $._expression)),
      $._expression,
    ), optional($.wait_name)),

    wait_for: $ => seq('wait', 'for', field('event', $.identifier), 'within', $.duration,
      optional($.wait_name), optional($.where_clause), optional($.block),
      optional(seq('timeout', $.block))),

    wait_name: $ => seq('as', field('name', $.identifier)),

    if: $ => seq('if', $._expression, $.block,
      repeat(seq('else', 'if', $._expression, $.block)),
      optional(seq('else', $.block))),

    split: $ => seq('split', optional($.string), '{', repeat($.split_arm), '}'),

    split_arm: $ => seq($.percent, optional(seq('as', $.string)), $.block),

    stage: $ => seq('stage', $.string),
    exit: _ => 'exit',
    convert: _ => 'convert',

    // ----------------------------------------------------------------- tests

    test_block: $ => seq('test', $.string, '{', repeat($._step), '}'),

    _step: $ => choice(
      seq('at', $.datetime),
      seq('advance', $.duration),
      seq(choice('contact', 'update', 'given'), $._test_id, $.record),
      seq('event', $._test_id, $.identifier, optional($.record)),
      seq('expect', $._test_id, ':', $._claim),
    ),

    _test_id: $ => choice($.identifier, $.string),

    _claim: $ => choice(
      seq('nothing', 'else'),
      seq(optional('not'), 'in', $.identifier),
      seq('no', $._pattern),
      prec(1, seq($.identifier, choice('completed', 'converted', 'exited', 'failed'))),
      prec(2, $._pattern),
      $._expression,
    ),

    _pattern: $ => choice(
      seq('send', optional($.identifier), optional($.string), optional($.with_clause)),
      seq(choice('tag', 'untag'), optional($.string)),
      seq('set', $.path, optional(seq('=', $._expression))),
      seq('add', 'to', choice('list', 'audience'), optional($.string)),
      seq('remove', 'from', 'list', optional($.string)),
      seq('notify', optional($.string), optional($.string)),
      seq('webhook', optional($.string), optional($.with_clause)),
    ),

    // ----------------------------------------------------------- expressions

    _expression: $ => choice(
      $.binary_expression, $.unary_expression, $.is_set,
      $.call, $.path, $.list, $.string, $.integer, $.float, $.boolean,
      $.duration, $.datetime, $.now, seq('(', $._expression, ')'),
    ),

    binary_expression: $ => choice(
      prec.left(PREC.or, seq($._expression, 'or', $._expression)),
      prec.left(PREC.and, seq($._expression, 'and', $._expression)),
      prec.left(PREC.compare, seq($._expression,
        choice('==', '!=', '<', '<=', '>', '>=', 'in'), $._expression)),
      prec.right(PREC.coalesce, seq($._expression, '??', $._expression)),
      prec.left(PREC.add, seq($._expression, choice('+', '-'), $._expression)),
      prec.left(PREC.mul, seq($._expression, choice('*', '/'), $._expression)),
    ),

    unary_expression: $ => choice(
      prec(PREC.not, seq('not', $._expression)),
      prec(PREC.neg, seq('-', $._expression)),
    ),

    is_set: $ => prec.left(PREC.compare, seq($._expression, 'is', optional('not'), 'set')),

    // `len(x)`, ..., and the history predicates `seen(EVENT [where COND]
    // [within D])`, `count(...)`.
    call: $ => seq(field('function', $.identifier), '(',
      optional(choice(
        seq(field('event', $.identifier), optional($.where_clause), optional(seq('within', $.duration))),
        commaSep1($._expression),
      )), ')'),

    path: $ => seq(choice('contact', 'event', 'trigger'), '.', field('field', $.identifier)),

    list: $ => seq('[', optional(seq(commaSep1($._expression), optional(','))), ']'),

    string: $ => seq('"', repeat(choice($.escape_sequence, $.interpolation, /[^"\\{]+/)), '"'),
    escape_sequence: _ => token.immediate(/\\["\\nt{}]/),
    interpolation: $ => seq('{', $._expression, '}'),

    integer: _ => /\d+/,
    float: _ => /\d+\.\d+/,
    percent: _ => /\d+%/,
    duration: _ => token(seq(/\d+[smhdw]/, repeat(seq(/ +/, /\d+[smhdw]/)))),
    clock_time: _ => /\d{1,2}:\d{2}/,
    datetime: _ => /@\d{4}-\d{2}-\d{2}T[0-9:.]+(Z|[+-]\d{2}:\d{2})/,
    boolean: _ => choice('true', 'false'),
    now: _ => 'now',
    weekday: _ => choice('monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'),

    identifier: _ => /[A-Za-z_][A-Za-z0-9_]*/,
  },
});

function commaSep1(rule) {
  return seq(rule, repeat(seq(',', rule)));
}
