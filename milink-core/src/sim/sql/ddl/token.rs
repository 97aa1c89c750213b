//! The T-SQL tokenizer: identifiers (plain, `[bracketed]` with `]]` escapes and `"quoted"`),
//! string literals (`'…'` and `N'…'` with `''` escapes), `0x…` binary literals, numbers,
//! variables (`@x`, `@@x`), punctuation, and `--` / `/* */` comments (which nest, as in T-SQL).
//!
//! A string, bracket or comment that is never closed is error 102, like any other text SQL
//! Server cannot read.

use super::super::super::tds::SqlError;

/// Incorrect syntax.
pub const SYNTAX_ERROR: u32 = 102;

/// What a token is. `Debug` never shows a string literal's text (it may be a password).
#[derive(Clone, PartialEq, Eq)]
pub enum TokenKind {
    /// A plain identifier or keyword, as written (compare case-insensitively).
    Word(String),
    /// A delimited identifier (`[…]` or `"…"`), unescaped.
    Quoted(String),
    /// A string literal, unescaped; `unicode` for `N'…'`.
    Str {
        /// The text between the quotes, with `''` read as `'`.
        value: String,
        /// Written `N'…'`.
        unicode: bool,
    },
    /// A binary literal `0x…`.
    Binary(Vec<u8>),
    /// A number as written (digits with at most one `.`).
    Number(String),
    /// A variable (`@name`) or a system function (`@@NAME`), as written.
    Variable(String),
    /// Punctuation or an operator: `( ) , ; . = < > <= >= <> != + - * / % ~ & | ^ :: :`.
    Punct(&'static str),
}

impl std::fmt::Debug for TokenKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenKind::Word(w) => f.debug_tuple("Word").field(w).finish(),
            TokenKind::Quoted(q) => f.debug_tuple("Quoted").field(q).finish(),
            TokenKind::Str { value, unicode } => f
                .debug_struct("Str")
                .field("chars", &value.chars().count())
                .field("unicode", unicode)
                .finish_non_exhaustive(),
            TokenKind::Binary(b) => f.debug_tuple("Binary").field(&b.len()).finish(),
            TokenKind::Number(n) => f.debug_tuple("Number").field(n).finish(),
            TokenKind::Variable(v) => f.debug_tuple("Variable").field(v).finish(),
            TokenKind::Punct(p) => f.debug_tuple("Punct").field(p).finish(),
        }
    }
}

/// A token and where it is in the batch text (byte offsets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// What it is.
    pub kind: TokenKind,
    /// Byte offset of its first character.
    pub start: usize,
    /// Byte offset just past its last character.
    pub end: usize,
}

impl Token {
    /// Whether this token is the keyword (or plain identifier) `word`, case-insensitively.
    pub fn is_word(&self, word: &str) -> bool {
        matches!(&self.kind, TokenKind::Word(w) if w.eq_ignore_ascii_case(word))
    }

    /// Whether this token is the punctuation `p`.
    pub fn is_punct(&self, p: &str) -> bool {
        matches!(&self.kind, TokenKind::Punct(q) if *q == p)
    }
}

/// SQL Server's answer to text it cannot read: error 102, class 15.
pub fn syntax_error(near: &str) -> SqlError {
    SqlError::new(SYNTAX_ERROR, 15, format!("Incorrect syntax near '{near}'."))
}

const PUNCTS: [&str; 22] = [
    "<=", ">=", "<>", "!=", "::", "(", ")", ",", ";", ".", "=", "<", ">", "+", "-", "*", "/", "%",
    "~", "&", "|", "^",
];

fn is_word_start(c: char) -> bool {
    c.is_alphabetic() || c == '_' || c == '#'
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '#' | '$' | '@')
}

/// The first characters of `sql` from `at`, for an error message.
fn excerpt(sql: &str, at: usize) -> String {
    sql.get(at..)
        .unwrap_or("")
        .chars()
        .take(20)
        .collect::<String>()
}

/// Splits `sql` into tokens, skipping white space and comments.
pub fn tokenize(sql: &str) -> Result<Vec<Token>, SqlError> {
    let mut out = Vec::new();
    let chars: Vec<(usize, char)> = sql.char_indices().collect();
    let at = |i: usize| chars.get(i).map(|&(_, c)| c);
    let offset = |i: usize| chars.get(i).map_or(sql.len(), |&(o, _)| o);
    let mut i = 0;
    while let Some(c) = at(i) {
        let start = offset(i);
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '-' && at(i + 1) == Some('-') {
            while let Some(c) = at(i) {
                if c == '\n' {
                    break;
                }
                i += 1;
            }
            continue;
        }
        if c == '/' && at(i + 1) == Some('*') {
            // Block comments nest in T-SQL.
            let mut depth = 0usize;
            loop {
                match (at(i), at(i + 1)) {
                    (Some('/'), Some('*')) => {
                        depth += 1;
                        i += 2;
                    }
                    (Some('*'), Some('/')) => {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    }
                    (Some(_), _) => i += 1,
                    (None, _) => {
                        return Err(SqlError::new(
                            SYNTAX_ERROR,
                            15,
                            format!(
                                "Missing end comment mark '*/'. Incorrect syntax near '{}'.",
                                excerpt(sql, start)
                            ),
                        ));
                    }
                }
            }
            continue;
        }
        let unicode_string = (c == 'N' || c == 'n') && at(i + 1) == Some('\'');
        if c == '\'' || unicode_string {
            let mut j = if unicode_string { i + 2 } else { i + 1 };
            let mut value = String::new();
            loop {
                match (at(j), at(j + 1)) {
                    (Some('\''), Some('\'')) => {
                        value.push('\'');
                        j += 2;
                    }
                    (Some('\''), _) => {
                        j += 1;
                        break;
                    }
                    (Some(ch), _) => {
                        value.push(ch);
                        j += 1;
                    }
                    (None, _) => {
                        // The text itself may be a secret (a password): never echo it.
                        return Err(SqlError::new(
                            SYNTAX_ERROR,
                            15,
                            "Unclosed quotation mark after the character string. Incorrect \
                             syntax near the end of the batch.",
                        ));
                    }
                }
            }
            out.push(Token {
                kind: TokenKind::Str {
                    value,
                    unicode: unicode_string,
                },
                start,
                end: offset(j),
            });
            i = j;
            continue;
        }
        if c == '[' || c == '"' {
            let close = if c == '[' { ']' } else { '"' };
            let mut j = i + 1;
            let mut value = String::new();
            loop {
                match (at(j), at(j + 1)) {
                    (Some(a), Some(b)) if a == close && b == close => {
                        value.push(close);
                        j += 2;
                    }
                    (Some(a), _) if a == close => {
                        j += 1;
                        break;
                    }
                    (Some(ch), _) => {
                        value.push(ch);
                        j += 1;
                    }
                    (None, _) => {
                        return Err(SqlError::new(
                            SYNTAX_ERROR,
                            15,
                            format!(
                                "Unclosed quotation mark after the identifier. Incorrect syntax \
                                 near '{}'.",
                                excerpt(sql, start)
                            ),
                        ));
                    }
                }
            }
            out.push(Token {
                kind: TokenKind::Quoted(value),
                start,
                end: offset(j),
            });
            i = j;
            continue;
        }
        if c == '0' && matches!(at(i + 1), Some('x' | 'X')) {
            let mut j = i + 2;
            let mut hex = String::new();
            while let Some(h) = at(j).filter(char::is_ascii_hexdigit) {
                hex.push(h);
                j += 1;
            }
            if at(j).is_some_and(is_word_char) {
                return Err(syntax_error(&excerpt(sql, start)));
            }
            if hex.len() % 2 == 1 {
                hex.insert(0, '0');
            }
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|k| u8::from_str_radix(hex.get(k..k + 2).unwrap_or("00"), 16).unwrap_or(0))
                .collect();
            out.push(Token {
                kind: TokenKind::Binary(bytes),
                start,
                end: offset(j),
            });
            i = j;
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && at(i + 1).is_some_and(|d| d.is_ascii_digit())) {
            let mut j = i;
            let mut dot = false;
            while let Some(d) = at(j) {
                if d.is_ascii_digit() {
                    j += 1;
                } else if d == '.' && !dot {
                    dot = true;
                    j += 1;
                } else {
                    break;
                }
            }
            out.push(Token {
                kind: TokenKind::Number(sql.get(start..offset(j)).unwrap_or("").to_string()),
                start,
                end: offset(j),
            });
            i = j;
            continue;
        }
        if c == '@' {
            let mut j = i + 1;
            if at(j) == Some('@') {
                j += 1;
            }
            while at(j).is_some_and(is_word_char) {
                j += 1;
            }
            if j == i + 1 {
                return Err(syntax_error("@"));
            }
            out.push(Token {
                kind: TokenKind::Variable(sql.get(start..offset(j)).unwrap_or("").to_string()),
                start,
                end: offset(j),
            });
            i = j;
            continue;
        }
        if is_word_start(c) {
            let mut j = i + 1;
            while at(j).is_some_and(is_word_char) {
                j += 1;
            }
            out.push(Token {
                kind: TokenKind::Word(sql.get(start..offset(j)).unwrap_or("").to_string()),
                start,
                end: offset(j),
            });
            i = j;
            continue;
        }
        let rest = sql.get(start..).unwrap_or("");
        let Some(p) = PUNCTS.iter().find(|p| rest.starts_with(**p)) else {
            return Err(syntax_error(&c.to_string()));
        };
        out.push(Token {
            kind: TokenKind::Punct(p),
            start,
            end: start + p.len(),
        });
        i += p.chars().count();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(sql: &str) -> Vec<TokenKind> {
        tokenize(sql).unwrap().into_iter().map(|t| t.kind).collect()
    }

    fn word(s: &str) -> TokenKind {
        TokenKind::Word(s.to_string())
    }

    #[test]
    fn strings_unescape_doubled_quotes_and_know_their_prefix() {
        assert_eq!(
            kinds("N'it''s' 'a''''b' n''"),
            vec![
                TokenKind::Str {
                    value: "it's".into(),
                    unicode: true
                },
                TokenKind::Str {
                    value: "a''b".into(),
                    unicode: false
                },
                TokenKind::Str {
                    value: String::new(),
                    unicode: true
                },
            ]
        );
    }

    #[test]
    fn brackets_unescape_doubled_closers_and_keep_everything_else() {
        assert_eq!(
            kinds("[Cert]]x'; DROP --] [a b] \"q\"\"x\""),
            vec![
                TokenKind::Quoted("Cert]x'; DROP --".into()),
                TokenKind::Quoted("a b".into()),
                TokenKind::Quoted("q\"x".into()),
            ]
        );
    }

    #[test]
    fn comments_are_skipped_and_nest() {
        assert_eq!(
            kinds("USE -- a comment ' [ \n master /* x /* y */ still */;"),
            vec![word("USE"), word("master"), TokenKind::Punct(";")]
        );
        // Comment markers inside strings and brackets are text.
        assert_eq!(
            kinds("N'/* -- ' [--]"),
            vec![
                TokenKind::Str {
                    value: "/* -- ".into(),
                    unicode: true
                },
                TokenKind::Quoted("--".into()),
            ]
        );
    }

    #[test]
    fn binaries_numbers_variables_and_operators() {
        assert_eq!(
            kinds("0x3082ff 0xABC 0x 5022 1.5 @cert_id @@SERVERNAME <> != <= a.b"),
            vec![
                TokenKind::Binary(vec![0x30, 0x82, 0xff]),
                TokenKind::Binary(vec![0x0a, 0xbc]),
                TokenKind::Binary(vec![]),
                TokenKind::Number("5022".into()),
                TokenKind::Number("1.5".into()),
                TokenKind::Variable("@cert_id".into()),
                TokenKind::Variable("@@SERVERNAME".into()),
                TokenKind::Punct("<>"),
                TokenKind::Punct("!="),
                TokenKind::Punct("<="),
                word("a"),
                TokenKind::Punct("."),
                word("b"),
            ]
        );
    }

    #[test]
    fn token_offsets_cover_their_text() {
        let sql = "SELECT N'x' FROM [t]";
        let toks = tokenize(sql).unwrap();
        let texts: Vec<&str> = toks.iter().map(|t| &sql[t.start..t.end]).collect();
        assert_eq!(texts, ["SELECT", "N'x'", "FROM", "[t]"]);
    }

    #[test]
    fn unterminated_text_is_a_syntax_error() {
        for sql in [
            "SELECT 'abc",
            "SELECT N'it''s",
            "CREATE CERTIFICATE [x",
            "SELECT 1 /* never closed",
            "SELECT 1 /* /* nested */ still open",
            "SELECT \"x",
            "0x12zz",
            "SELECT ?",
        ] {
            let e = tokenize(sql).unwrap_err();
            assert_eq!(e.number, 102, "{sql}");
        }
        let e = tokenize("CREATE MASTER KEY ENCRYPTION BY PASSWORD = N'Hunter2").unwrap_err();
        assert!(!e.message.contains("Hunter2"), "{}", e.message);
        let toks = tokenize("PASSWORD = N'Hunter2'").unwrap();
        assert!(!format!("{toks:?}").contains("Hunter2"));
    }
}
