//! "Did you mean" suggestions, from one place.

/// The candidate closest to `name`, if it is close enough to be a likely typo.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(1);
    // A name far longer than every candidate is no typo of one; this also
    // keeps the edit distance from running over a huge input.
    candidates
        .into_iter()
        .filter(|c| name.len() <= 4 * c.len().max(8))
        .map(|c| (strsim::damerau_levenshtein(name, c), c))
        .filter(|(d, c)| *d <= limit || (c.len() > 3 && (c.contains(name) || name.contains(*c))))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// A help line: "did you mean `x`?" when there is a close candidate, else
/// the list of what exists (shortened) so the user can pick.
pub fn help<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str> + Clone,
    what: &str,
) -> String {
    if let Some(c) = closest(name, candidates.clone()) {
        return format!("did you mean `{c}`?");
    }
    let all: Vec<&str> = candidates.into_iter().collect();
    if all.is_empty() {
        return format!("no {what} is declared");
    }
    let shown: Vec<String> = all.iter().take(8).map(|c| format!("`{c}`")).collect();
    let more = if all.len() > 8 { ", ..." } else { "" };
    format!("the known {what}s are {}{more}", shown.join(", "))
}

/// The longest piece of user text a message repeats, in characters.
pub const ECHO_LIMIT: usize = 80;

/// The characters that reorder text on a terminal or a page (bidirectional
/// embeddings, overrides, isolates and marks): shown escaped.
pub fn is_bidi(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// User text written whole to a terminal (a test's name): control and
/// bidirectional characters escaped, nothing cut.
pub fn echo_whole(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() || is_bidi(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// User text (a name from input, a value) as a message may repeat it:
/// control and bidirectional characters escaped (a newline or an ESC in input can neither
/// forge a log line nor drive the terminal), and cut to [`ECHO_LIMIT`]
/// characters with the total length said.
pub fn echo(text: &str) -> String {
    match text.char_indices().nth(ECHO_LIMIT) {
        None => echo_whole(text),
        Some((cut, _)) => format!(
            "{}... ({} characters in all)",
            echo_whole(&text[..cut]),
            text.chars().count()
        ),
    }
}
