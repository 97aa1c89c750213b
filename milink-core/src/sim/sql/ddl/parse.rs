//! The parser: a batch's tokens into [`Script`] statements. Control flow (`IF`, `BEGIN … END`,
//! `TRY … CATCH`), variables, `EXEC`, `THROW`, `USE`, `SET` and the span of each read-only
//! statement are read here; the DDL forms in `parse_ddl`.
//!
//! A statement ends at `;` or where the next statement's keyword begins, as in T-SQL. `GO` is
//! a client's batch separator, not T-SQL: the server reads it as a word it does not expect.

use super::super::super::tds::{SqlError, Value};
use super::ast::{Condition, Expr, Query, Script, Statement};
use super::token::{Token, TokenKind, syntax_error, tokenize};

/// Parses a whole batch.
pub fn parse_script(sql: &str) -> Result<(Vec<Token>, Script), SqlError> {
    let tokens = tokenize(sql)?;
    let mut p = Parser {
        tokens: &tokens,
        sql,
        pos: 0,
    };
    let mut statements = Vec::new();
    loop {
        while p.eat_punct(";") {}
        if p.at_end() {
            break;
        }
        statements.push(p.statement()?);
    }
    Ok((tokens, Script { statements }))
}

/// Keywords that begin a statement: a read-only statement ends before one of them (outside
/// parentheses and `CASE … END`).
const STATEMENT_STARTS: [&str; 20] = [
    "SELECT",
    "IF",
    "ELSE",
    "BEGIN",
    "END",
    "CREATE",
    "ALTER",
    "DROP",
    "DECLARE",
    "EXEC",
    "EXECUTE",
    "USE",
    "SET",
    "THROW",
    "RAISERROR",
    "PRINT",
    "INSERT",
    "UPDATE",
    "DELETE",
    "GO",
];

/// Reads statements from tokens.
pub(super) struct Parser<'a> {
    pub(super) tokens: &'a [Token],
    pub(super) sql: &'a str,
    pub(super) pos: usize,
}

impl<'a> Parser<'a> {
    pub(super) fn peek(&self) -> Option<&'a Token> {
        self.tokens.get(self.pos)
    }

    pub(super) fn peek_at(&self, ahead: usize) -> Option<&'a Token> {
        self.tokens.get(self.pos + ahead)
    }

    pub(super) fn at_end(&self) -> bool {
        self.pos >= self.tokens.len()
    }

    /// Error 102 near the current token (or the last one, at the end of the batch). A string
    /// after `PASSWORD =` is never shown.
    pub(super) fn error(&self) -> SqlError {
        let idx = self.pos.min(self.tokens.len().saturating_sub(1));
        let Some(t) = self.tokens.get(idx) else {
            return syntax_error("");
        };
        let after_password = (1..=2).any(|back| {
            idx.checked_sub(back)
                .and_then(|k| self.tokens.get(k))
                .is_some_and(|p| p.is_word("PASSWORD"))
        });
        if after_password && matches!(t.kind, TokenKind::Str { .. }) {
            return syntax_error("***");
        }
        let text = self.sql.get(t.start..t.end).unwrap_or("");
        let near: String = text.chars().take(40).collect();
        syntax_error(&near)
    }

    pub(super) fn is_word(&self, w: &str) -> bool {
        self.peek().is_some_and(|t| t.is_word(w))
    }

    pub(super) fn eat_word(&mut self, w: &str) -> bool {
        if self.is_word(w) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub(super) fn expect_word(&mut self, w: &str) -> Result<(), SqlError> {
        if self.eat_word(w) {
            Ok(())
        } else {
            Err(self.error())
        }
    }

    pub(super) fn expect_words(&mut self, ws: &[&str]) -> Result<(), SqlError> {
        ws.iter().try_for_each(|w| self.expect_word(w))
    }

    pub(super) fn eat_punct(&mut self, p: &str) -> bool {
        if self.peek().is_some_and(|t| t.is_punct(p)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub(super) fn expect_punct(&mut self, p: &str) -> Result<(), SqlError> {
        if self.eat_punct(p) {
            Ok(())
        } else {
            Err(self.error())
        }
    }

    /// One of `words` (upper case), consumed.
    pub(super) fn one_of(&mut self, words: &[&str]) -> Result<String, SqlError> {
        match words.iter().find(|w| self.is_word(w)) {
            Some(w) => {
                self.pos += 1;
                Ok((*w).to_string())
            }
            None => Err(self.error()),
        }
    }

    /// An identifier: plain or delimited. With `multipart`, `a.b.c` gives `c`.
    pub(super) fn ident(&mut self) -> Result<String, SqlError> {
        let name = match self.peek().map(|t| &t.kind) {
            Some(TokenKind::Word(w)) => w.clone(),
            Some(TokenKind::Quoted(q)) => q.clone(),
            _ => return Err(self.error()),
        };
        self.pos += 1;
        Ok(name)
    }

    /// A (possibly multi-part) name; its last part.
    pub(super) fn multipart_ident(&mut self) -> Result<String, SqlError> {
        let mut name = self.ident()?;
        while self.eat_punct(".") {
            name = self.ident()?;
        }
        Ok(name)
    }

    /// A string literal.
    pub(super) fn string(&mut self) -> Result<String, SqlError> {
        match self.peek().map(|t| &t.kind) {
            Some(TokenKind::Str { value, .. }) => {
                let v = value.clone();
                self.pos += 1;
                Ok(v)
            }
            _ => Err(self.error()),
        }
    }

    /// An unsigned integer literal that fits `u16`.
    pub(super) fn small_number(&mut self) -> Result<u16, SqlError> {
        match self.peek().map(|t| &t.kind) {
            Some(TokenKind::Number(n)) => {
                let v = n.parse::<u16>().map_err(|_| self.error())?;
                self.pos += 1;
                Ok(v)
            }
            _ => Err(self.error()),
        }
    }

    /// `KEYWORD =`.
    pub(super) fn option_name(&mut self) -> Result<String, SqlError> {
        let name = match self.peek().map(|t| &t.kind) {
            Some(TokenKind::Word(w)) => w.to_ascii_uppercase(),
            _ => return Err(self.error()),
        };
        self.pos += 1;
        Ok(name)
    }

    fn statement(&mut self) -> Result<Statement, SqlError> {
        let Some(t) = self.peek() else {
            return Err(self.error());
        };
        let TokenKind::Word(w) = &t.kind else {
            if t.is_punct("(") {
                return self.query().map(Statement::Query);
            }
            return Err(self.error());
        };
        match w.to_ascii_uppercase().as_str() {
            "SELECT" | "WITH" => self.query().map(Statement::Query),
            "USE" => {
                self.pos += 1;
                self.ident().map(Statement::Use)
            }
            "SET" => {
                self.pos += 1;
                let option = self.option_name()?;
                if !matches!(
                    option.as_str(),
                    "NOCOUNT" | "XACT_ABORT" | "ANSI_NULLS" | "QUOTED_IDENTIFIER" | "ARITHABORT"
                ) {
                    return Err(self.error());
                }
                let on = self.one_of(&["ON", "OFF"])? == "ON";
                Ok(Statement::SetOption { option, on })
            }
            "IF" => self.if_statement(),
            "BEGIN" => self.begin(),
            "DECLARE" => self.declare(),
            "EXEC" | "EXECUTE" => self.exec(),
            "THROW" => {
                self.pos += 1;
                if self.at_end() || self.eat_punct(";") || self.at_statement_start() {
                    return Ok(Statement::Throw(None));
                }
                let number = self.expr()?;
                self.expect_punct(",")?;
                let message = self.expr()?;
                self.expect_punct(",")?;
                let state = self.expr()?;
                Ok(Statement::Throw(Some((number, message, state))))
            }
            "CREATE" | "ALTER" | "DROP" => self.ddl().map(Statement::Ddl),
            _ => Err(self.error()),
        }
    }

    fn at_statement_start(&self) -> bool {
        STATEMENT_STARTS.iter().any(|k| self.is_word(k))
    }

    /// A read-only statement: everything up to `;` or the next statement at depth 0.
    pub(super) fn query(&mut self) -> Result<Query, SqlError> {
        let first = self.pos;
        let mut depth = 0usize;
        let mut case_depth = 0usize;
        let mut reads_public_key = false;
        // A listing of `sys.certificates` with each one's bytes is a catalog read (the
        // readiness probe), not the export of one certificate's public key.
        let mut lists_certificates = false;
        let mut reads_hadr = false;
        let mut reads_backups = false;
        // `WITH a AS (…), b AS (…) SELECT …`: the SELECT after the last common table
        // expression belongs to the statement.
        let mut cte_body_due = self.peek().is_some_and(|t| t.is_word("WITH"));
        while let Some(t) = self.peek() {
            if depth == 0 && case_depth == 0 && self.pos > first {
                if t.is_punct(";") || (t.is_punct(")")) {
                    break;
                }
                let previous = self.tokens.get(self.pos - 1);
                let follows_set_operator = previous.is_some_and(|p| {
                    ["UNION", "ALL", "EXCEPT", "INTERSECT"]
                        .iter()
                        .any(|k| p.is_word(k))
                        || p.is_punct("(")
                });
                let cte_body = cte_body_due
                    && t.is_word("SELECT")
                    && previous.is_some_and(|p| p.is_punct(")"));
                if cte_body {
                    cte_body_due = false;
                } else if self.at_statement_start()
                    && !(t.is_word("SELECT") && follows_set_operator)
                {
                    break;
                }
            }
            match &t.kind {
                TokenKind::Punct("(") => depth += 1,
                TokenKind::Punct(")") => depth = depth.saturating_sub(1),
                TokenKind::Word(w) if w.eq_ignore_ascii_case("CASE") => case_depth += 1,
                TokenKind::Word(w) if w.eq_ignore_ascii_case("END") => {
                    case_depth = case_depth.saturating_sub(1);
                }
                TokenKind::Word(w) | TokenKind::Quoted(w) => {
                    let lower = w.to_ascii_lowercase();
                    reads_public_key |= lower == "certencoded";
                    lists_certificates |= lower == "certificates";
                    // The failover cluster's name is not the link's state.
                    reads_hadr |= (lower.starts_with("dm_hadr_") && lower != "dm_hadr_cluster")
                        || lower == "availability_groups"
                        || lower == "availability_replicas";
                    reads_backups |= lower == "backupset";
                }
                _ => {}
            }
            self.pos += 1;
        }
        if depth != 0 || case_depth != 0 || self.pos == first {
            return Err(self.error());
        }
        Ok(Query {
            first,
            last: self.pos,
            reads_public_key: reads_public_key && !lists_certificates,
            reads_hadr,
            reads_backups,
        })
    }

    fn if_statement(&mut self) -> Result<Statement, SqlError> {
        self.expect_word("IF")?;
        let condition = if self.is_word("NOT") || self.is_word("EXISTS") {
            let negated = self.eat_word("NOT");
            self.expect_word("EXISTS")?;
            self.expect_punct("(")?;
            let query = self.query()?;
            self.expect_punct(")")?;
            Condition::Exists { negated, query }
        } else {
            let value = self.expr()?;
            if self.eat_punct("=") {
                let right = self.expr()?;
                Condition::Equals {
                    left: value,
                    negated: false,
                    right,
                }
            } else if self.eat_punct("<>") || self.eat_punct("!=") {
                let right = self.expr()?;
                Condition::Equals {
                    left: value,
                    negated: true,
                    right,
                }
            } else {
                let negated = self.eat_word("NOT");
                self.expect_word("LIKE")?;
                let pattern = self.expr()?;
                Condition::Like {
                    value,
                    negated,
                    pattern,
                }
            }
        };
        let then = Box::new(self.statement()?);
        // `IF … stmt; ELSE …` is valid T-SQL.
        let save = self.pos;
        while self.eat_punct(";") {}
        let otherwise = if self.eat_word("ELSE") {
            Some(Box::new(self.statement()?))
        } else {
            self.pos = save;
            None
        };
        Ok(Statement::If {
            condition,
            then,
            otherwise,
        })
    }

    fn block_until_end(&mut self) -> Result<Vec<Statement>, SqlError> {
        let mut body = Vec::new();
        loop {
            while self.eat_punct(";") {}
            if self.is_word("END") {
                self.pos += 1;
                return Ok(body);
            }
            if self.at_end() {
                return Err(self.error());
            }
            body.push(self.statement()?);
        }
    }

    fn begin(&mut self) -> Result<Statement, SqlError> {
        self.expect_word("BEGIN")?;
        if self.eat_word("TRY") {
            let body = self.block_until_end()?;
            self.expect_word("TRY")?;
            while self.eat_punct(";") {}
            self.expect_words(&["BEGIN", "CATCH"])?;
            let handler = self.block_until_end()?;
            self.expect_word("CATCH")?;
            return Ok(Statement::TryCatch { body, handler });
        }
        if self.is_word("TRAN") || self.is_word("TRANSACTION") || self.is_word("CATCH") {
            return Err(self.error());
        }
        self.block_until_end().map(Statement::Block)
    }

    fn declare(&mut self) -> Result<Statement, SqlError> {
        self.expect_word("DECLARE")?;
        let mut vars = Vec::new();
        loop {
            let name = self.variable()?;
            self.eat_word("AS");
            self.one_of(&[
                "INT",
                "BIGINT",
                "SMALLINT",
                "TINYINT",
                "BIT",
                "NVARCHAR",
                "VARCHAR",
                "NCHAR",
                "CHAR",
                "VARBINARY",
                "SYSNAME",
            ])?;
            if self.eat_punct("(") {
                if !self.eat_word("MAX") {
                    self.small_number()?;
                }
                self.expect_punct(")")?;
            }
            let init = if self.eat_punct("=") {
                let at = self.pos;
                match self.expr() {
                    Ok(e) if self.at_declare_item_end() => Some(e),
                    _ => {
                        self.pos = at;
                        Some(Expr::Query(self.scalar()?))
                    }
                }
            } else {
                None
            };
            vars.push((name, init));
            if !self.eat_punct(",") {
                return Ok(Statement::Declare(vars));
            }
        }
    }

    fn at_declare_item_end(&self) -> bool {
        self.at_end()
            || self.is_punct_here(",")
            || self.is_punct_here(";")
            || self.at_statement_start()
    }

    /// A scalar expression's tokens, up to `,` or `;` at depth 0 or the next statement.
    fn scalar(&mut self) -> Result<Query, SqlError> {
        let first = self.pos;
        let mut depth = 0usize;
        while let Some(t) = self.peek() {
            if depth == 0 && (t.is_punct(",") || t.is_punct(";") || self.at_statement_start()) {
                break;
            }
            if t.is_punct("(") {
                depth += 1;
            } else if t.is_punct(")") {
                depth = depth.checked_sub(1).ok_or_else(|| self.error())?;
            }
            self.pos += 1;
        }
        if depth != 0 || self.pos == first {
            return Err(self.error());
        }
        Ok(Query {
            first,
            last: self.pos,
            reads_public_key: false,
            reads_hadr: false,
            reads_backups: false,
        })
    }

    fn variable(&mut self) -> Result<String, SqlError> {
        match self.peek().map(|t| &t.kind) {
            Some(TokenKind::Variable(v)) if !v.starts_with("@@") => {
                let v = v.clone();
                self.pos += 1;
                Ok(v)
            }
            _ => Err(self.error()),
        }
    }

    fn exec(&mut self) -> Result<Statement, SqlError> {
        self.pos += 1;
        let procedure = self.multipart_ident()?;
        let mut args = Vec::new();
        if self.at_end() || self.is_punct_here(";") || self.at_statement_start() {
            return Ok(Statement::Exec { procedure, args });
        }
        loop {
            let named = match (self.peek(), self.peek_at(1)) {
                (
                    Some(Token {
                        kind: TokenKind::Variable(v),
                        ..
                    }),
                    Some(eq),
                ) if eq.is_punct("=") => {
                    let v = v.clone();
                    self.pos += 2;
                    Some(v)
                }
                _ => None,
            };
            args.push((named, self.expr()?));
            if !self.eat_punct(",") {
                return Ok(Statement::Exec { procedure, args });
            }
        }
    }

    fn is_punct_here(&self, p: &str) -> bool {
        self.peek().is_some_and(|t| t.is_punct(p))
    }

    /// A scalar: a literal, a variable, `NULL`, `CERT_ID(…)`, `ERROR_MESSAGE()`,
    /// `ERROR_NUMBER()`, or a negative number.
    pub(super) fn expr(&mut self) -> Result<Expr, SqlError> {
        let Some(t) = self.peek() else {
            return Err(self.error());
        };
        let e = match &t.kind {
            TokenKind::Str { value, .. } => Expr::Literal(Value::String(value.clone())),
            TokenKind::Binary(b) => Expr::Literal(Value::Binary(b.clone())),
            TokenKind::Number(n) => Expr::Literal(number(n).ok_or_else(|| self.error())?),
            TokenKind::Punct("-") => {
                self.pos += 1;
                return match self.expr()? {
                    Expr::Literal(Value::Int(i)) => Ok(Expr::Literal(Value::Int(-i))),
                    Expr::Literal(Value::BigInt(i)) => Ok(Expr::Literal(Value::BigInt(-i))),
                    _ => Err(self.error()),
                };
            }
            TokenKind::Variable(v) => Expr::Var(v.clone()),
            TokenKind::Word(w) if w.eq_ignore_ascii_case("NULL") => Expr::Literal(Value::Null),
            TokenKind::Word(w) => {
                let f = w.to_ascii_uppercase();
                self.pos += 1;
                self.expect_punct("(")?;
                let e = match f.as_str() {
                    "CERT_ID" => Expr::CertId(Box::new(self.expr()?)),
                    "ERROR_MESSAGE" => Expr::ErrorMessage,
                    "ERROR_NUMBER" => Expr::ErrorNumber,
                    _ => {
                        return Err(SqlError::new(
                            195,
                            15,
                            format!("'{w}' is not a recognized built-in function name."),
                        ));
                    }
                };
                self.expect_punct(")")?;
                return Ok(e);
            }
            _ => return Err(self.error()),
        };
        self.pos += 1;
        Ok(e)
    }
}

fn number(n: &str) -> Option<Value> {
    if n.contains('.') {
        let (int, frac) = n.split_once('.')?;
        let digits = format!("{int}{frac}");
        return Some(Value::Numeric {
            value: digits.parse().ok()?,
            scale: u8::try_from(frac.len()).ok()?,
        });
    }
    match n.parse::<i64>().ok()? {
        v if i32::try_from(v).is_ok() => Some(Value::Int(i32::try_from(v).ok()?)),
        v => Some(Value::BigInt(v)),
    }
}
