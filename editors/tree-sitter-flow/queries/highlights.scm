; Highlights for nurture's `.flow` programs.

(is_set ["is" "not" "set"] @keyword.operator)

(comment) @comment
(string) @string
(escape_sequence) @string.escape
(interpolation ["{" "}"] @punctuation.special)
[(integer) (float) (percent)] @number
[(duration) (clock_time) (datetime)] @constant
(boolean) @boolean
(now) @constant.builtin
(weekday) @constant

(primitive_type) @type.builtin
(annotation "@" @attribute name: (identifier) @attribute)

(workflow name: (identifier) @function)
(event_declaration name: (identifier) @type)
(trigger event: (identifier) @type)
(wait_for event: (identifier) @type)
(call event: (identifier) @type)
(field_declaration name: (identifier) @property)
(payload_field name: (identifier) @property)
(path field: (identifier) @property)
(path ["contact" "event" "trigger"] @variable.builtin)
(entry key: (identifier) @property)
(wait_name name: (identifier) @label)
(call function: (identifier) @function.builtin)
(send channel: (identifier) @constant)

[
  "when" "where" "goal" "exit" "reenter" "never" "always" "after" "inactive" "change" "finish"
  "every" "day" "month" "year" "on" "at" "until" "wait" "for" "within"
  "timeout" "if" "else" "split" "as" "stage"
] @keyword

[(exit) (convert)] @keyword

[
  "send" "tag" "untag" "set" "add" "remove" "to" "from" "list" "audience"
  "notify" "webhook" "with" "transactional"
] @keyword.function

[
  "contact" "event" "workflow" "test" "timezone" "quiet" "hours" "limit" "per"
  "advance" "given" "update" "expect" "nothing" "no"
  "completed" "converted" "exited" "failed"
] @keyword

["and" "or" "not" "in" "is"] @keyword.operator
["==" "!=" "<" "<=" ">" ">=" "+" "-" "*" "/" "=" "+=" "-=" "??" "|" "?"] @operator
["{" "}" "(" ")" "[" "]"] @punctuation.bracket
["," ":" "."] @punctuation.delimiter
