//! A T-SQL tokenizer written independently of `milink_core::tsql::quote`: bracket identifiers
//! (`]]`), `N'…'` and `'…'` strings (`''`), `"…"` identifiers (`""`), nested block comments,
//! line comments, binary and numeric literals, words, variables and punctuation. Shared by the
//! injection tests, the property tests and the fuzz targets.

/// One token, with quoted forms decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    /// `[…]`, decoded.
    Bracketed(String),
    /// `N'…'`, decoded.
    NString(String),
    /// `'…'`, decoded.
    String(String),
    /// `"…"`, decoded.
    Quoted(String),
    /// `0x…`, decoded.
    Binary(Vec<u8>),
    Number(String),
    Word(String),
    Variable(String),
    Comment(String),
    Punct(char),
}

fn read_delimited(chars: &[char], start: usize, close: char) -> Result<(String, usize), String> {
    let mut out = String::new();
    let mut i = start;
    loop {
        match chars.get(i) {
            None => return Err(format!("unterminated {close}-delimited token")),
            Some(&c) if c == close => {
                if chars.get(i + 1) == Some(&close) {
                    out.push(close);
                    i += 2;
                } else {
                    return Ok((out, i + 1));
                }
            }
            Some(&c) => {
                out.push(c);
                i += 1;
            }
        }
    }
}

fn is_word_start(c: char) -> bool {
    c.is_alphabetic() || c == '_' || c == '#'
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '#' | '@' | '$')
}

pub fn tokenize(sql: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = sql.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c.is_whitespace() {
            i += 1;
        } else if c == '-' && next == Some('-') {
            let start = i;
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            toks.push(Tok::Comment(chars[start..i].iter().collect()));
        } else if c == '/' && next == Some('*') {
            let start = i;
            let mut depth = 0usize;
            loop {
                match (chars.get(i), chars.get(i + 1)) {
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
                    (None, _) => return Err("unterminated block comment".into()),
                }
            }
            toks.push(Tok::Comment(chars[start..i].iter().collect()));
        } else if c == '[' {
            let (v, end) = read_delimited(&chars, i + 1, ']')?;
            toks.push(Tok::Bracketed(v));
            i = end;
        } else if (c == 'N' || c == 'n') && next == Some('\'') {
            let (v, end) = read_delimited(&chars, i + 2, '\'')?;
            toks.push(Tok::NString(v));
            i = end;
        } else if c == '\'' {
            let (v, end) = read_delimited(&chars, i + 1, '\'')?;
            toks.push(Tok::String(v));
            i = end;
        } else if c == '"' {
            let (v, end) = read_delimited(&chars, i + 1, '"')?;
            toks.push(Tok::Quoted(v));
            i = end;
        } else if c == '0' && matches!(next, Some('x' | 'X')) {
            let start = i + 2;
            i = start;
            while i < chars.len() && chars[i].is_ascii_hexdigit() {
                i += 1;
            }
            let hex: String = chars[start..i].iter().collect();
            if !hex.len().is_multiple_of(2) {
                return Err("odd number of hex digits".into());
            }
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|k| u8::from_str_radix(&hex[k..k + 2], 16).map_err(|e| e.to_string()))
                .collect::<Result<Vec<u8>, String>>()?;
            toks.push(Tok::Binary(bytes));
        } else if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            toks.push(Tok::Number(chars[start..i].iter().collect()));
        } else if c == '@' {
            let start = i;
            i += 1;
            while i < chars.len() && is_word_char(chars[i]) {
                i += 1;
            }
            toks.push(Tok::Variable(chars[start..i].iter().collect()));
        } else if is_word_start(c) {
            let start = i;
            while i < chars.len() && is_word_char(chars[i]) {
                i += 1;
            }
            toks.push(Tok::Word(chars[start..i].iter().collect()));
        } else {
            toks.push(Tok::Punct(c));
            i += 1;
        }
    }
    Ok(toks)
}
