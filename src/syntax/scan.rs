//! One lexical scanner for the few things several passes need to see in
//! raw text before (or without) parsing: string literals, `//` comments,
//! brackets. A string ends at its closing quote or, unclosed, at the end
//! of its line; a backslash escapes the next character inside strings;
//! a comment runs to the end of its line.

/// What the scanner found, with its byte offset in the text scanned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lexeme {
    /// A string literal starting at the opening quote; `closed` is false
    /// when its line ended first.
    Str { start: usize, closed: bool },
    /// A `//` comment, from its first slash to the end of the line.
    Comment { start: usize, end: usize },
    /// `{`, `[` or `(` outside strings and comments.
    Open { at: usize, bracket: char },
    /// `}`, `]` or `)` outside strings and comments.
    Close { at: usize, bracket: char },
}

/// The lexemes of `text`, in order.
pub fn scan(text: &str) -> Scanner<'_> {
    Scanner { text, pos: 0 }
}

/// Where a `//` comment starts on a line, outside string literals.
pub fn comment_start(line: &str) -> Option<usize> {
    scan(line).find_map(|l| match l {
        Lexeme::Comment { start, .. } => Some(start),
        _ => None,
    })
}

pub struct Scanner<'a> {
    text: &'a str,
    pos: usize,
}

impl Iterator for Scanner<'_> {
    type Item = Lexeme;

    fn next(&mut self) -> Option<Lexeme> {
        let bytes = self.text.as_bytes();
        while self.pos < bytes.len() {
            let at = self.pos;
            self.pos += 1;
            match bytes[at] {
                b'"' => return Some(self.string(at)),
                b'/' if bytes.get(at + 1) == Some(&b'/') => {
                    let end = memchr::memchr(b'\n', &bytes[at..]).map_or(bytes.len(), |i| at + i);
                    self.pos = end;
                    return Some(Lexeme::Comment { start: at, end });
                }
                b @ (b'{' | b'[' | b'(') => {
                    return Some(Lexeme::Open {
                        at,
                        bracket: char::from(b),
                    })
                }
                b @ (b'}' | b']' | b')') => {
                    return Some(Lexeme::Close {
                        at,
                        bracket: char::from(b),
                    })
                }
                _ => {}
            }
        }
        None
    }
}

impl Scanner<'_> {
    /// Moves past the string opened at `start`.
    fn string(&mut self, start: usize) -> Lexeme {
        let bytes = self.text.as_bytes();
        while self.pos < bytes.len() {
            match bytes[self.pos] {
                b'\\' => self.pos += 2,
                b'"' => {
                    self.pos += 1;
                    return Lexeme::Str {
                        start,
                        closed: true,
                    };
                }
                b'\n' => break,
                _ => self.pos += 1,
            }
        }
        self.pos = self.pos.min(bytes.len());
        Lexeme::Str {
            start,
            closed: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_hide_comments_and_brackets() {
        let got: Vec<_> = scan(r#"a "x // { \" }" { // c "#).collect();
        assert_eq!(
            got,
            [
                Lexeme::Str {
                    start: 2,
                    closed: true
                },
                Lexeme::Open {
                    at: 16,
                    bracket: '{'
                },
                Lexeme::Comment { start: 18, end: 23 },
            ]
        );
    }

    #[test]
    fn an_unclosed_string_ends_at_its_line() {
        let got: Vec<_> = scan("\"abc\n{").collect();
        assert_eq!(
            got,
            [
                Lexeme::Str {
                    start: 0,
                    closed: false
                },
                Lexeme::Open {
                    at: 5,
                    bracket: '{'
                },
            ]
        );
        assert_eq!(comment_start("x \"//\" // y"), Some(7));
        assert_eq!(comment_start("\"\\\\\" // y"), Some(5));
    }
}
