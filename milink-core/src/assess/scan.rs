//! Module text scanning: finds the T-SQL constructs the managed instance compatibility rules
//! (milink-facts §5.1) look for in procedures, functions, views, triggers and Agent job steps.
//!
//! A small tokenizer skips comments and string literals, so a word in a comment or a message
//! does not count. What it can't see: SQL built at run time (dynamic SQL in strings or
//! variables), and code that lives outside the database (applications, SSIS packages).

use serde::{Deserialize, Serialize};

use crate::assess::facts::is_sql_provider;

/// A construct found in module text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Marker {
    /// `xp_cmdshell`.
    XpCmdshell,
    /// `BULK INSERT` without `DATA_SOURCE` (a file, not Azure Blob Storage).
    BulkInsert,
    /// `OPENROWSET(BULK …)` without `DATA_SOURCE`.
    OpenRowsetBulk,
    /// `OPENROWSET('provider', …)` with a provider that is not SQL Server's; detail = provider.
    OpenRowsetProvider,
    /// `BEGIN DISTRIBUTED TRAN[SACTION]`.
    DistributedTransaction,
    /// `CREATE/ALTER ASSEMBLY … FROM '<file>'`; detail = the path.
    AssemblyFromFile,
    /// `CREATE/ALTER CRYPTOGRAPHIC PROVIDER`.
    CryptographicProvider,
    /// `COMPUTE <aggregate>(…)`.
    ComputeClause,
    /// `SET DISABLE_DEF_CNST_CHK`.
    DisableDefCnstChk,
    /// The `FASTFIRSTROW` table hint.
    FastFirstRow,
    /// `*=` in a WHERE/HAVING clause.
    NonAnsiLeftJoin,
    /// `=*` in a WHERE/HAVING clause.
    NonAnsiRightJoin,
    /// `RAISERROR <number|@var> …` without parentheses.
    LegacyRaiserror,
    /// SQL Mail procedures (`xp_sendmail`, `xp_startmail`, …); detail = the procedure.
    SqlMail,
    /// A system procedure the managed instance does not have ([`REMOVED_SYSTEM_PROCEDURES`]:
    /// `sp_dboption`, `sp_addserver`, `sp_dropalias`, `sp_activedirectory_obj`,
    /// `sp_activedirectory_scp`, `sp_activedirectory_start`); detail = the procedure.
    RemovedSystemProcedure,
    /// `sp_addalias`.
    AddAlias,
    /// A reference to another server: a four-part name, `OPENQUERY(server, …)` or
    /// `EXEC (…) AT server`; detail = the server name.
    RemoteServer,
    /// `OPENDATASOURCE('provider', …)` (an ad hoc linked server) with a provider that is not
    /// SQL Server's; detail = the provider.
    OpenDataSource,
}

/// One marker found in one module.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MarkerHit {
    /// What was found.
    pub marker: Marker,
    /// Where: `schema.object (TYPE)` or `job 'name' step n`.
    pub object: String,
    /// A detail, such as a path, a provider or a server name.
    pub detail: Option<String>,
}

const SQL_MAIL_PROCEDURES: [&str; 7] = [
    "XP_SENDMAIL",
    "XP_STARTMAIL",
    "XP_STOPMAIL",
    "XP_READMAIL",
    "XP_FINDNEXTMSG",
    "XP_DELETEMAIL",
    "SP_PROCESSMAIL",
];

/// The removed system and extended stored procedures of the `SystemProcedures110` rule, as
/// Microsoft's assessment rules page lists them: "Following unsupported system and extended
/// stored procedures cannot be used in Azure SQL Managed Instance - `sp_dboption`,
/// `sp_addserver`, `sp_dropalias`, `sp_activedirectory_obj`, `sp_activedirectory_scp`, and
/// `sp_activedirectory_start`" (sql-docs
/// `azure-sql/migration-guides/managed-instance/sql-server-to-sql-managed-instance-assessment-rules.md`,
/// section SystemProcedures110).
pub const REMOVED_SYSTEM_PROCEDURES: [&str; 6] = [
    "SP_DBOPTION",
    "SP_ADDSERVER",
    "SP_DROPALIAS",
    "SP_ACTIVEDIRECTORY_OBJ",
    "SP_ACTIVEDIRECTORY_SCP",
    "SP_ACTIVEDIRECTORY_START",
];

const AGGREGATES: [&str; 9] = [
    "SUM", "AVG", "COUNT", "MAX", "MIN", "STDEV", "STDEVP", "VAR", "VARP",
];

const STATEMENT_STARTS: [&str; 16] = [
    "SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", "EXEC", "EXECUTE", "BULK", "IF", "WHILE",
    "BEGIN", "END", "RETURN", "DECLARE", "COMMIT", "ROLLBACK",
];

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// A word or a quoted identifier: upper-cased text, original text, quoted.
    Word {
        upper: String,
        text: String,
        quoted: bool,
    },
    Str(String),
    Num,
    Var,
    Sym(char),
    StarEq,
    EqStar,
}

impl Tok {
    fn is_kw(&self, kw: &str) -> bool {
        matches!(self, Tok::Word { upper, quoted: false, .. } if upper == kw)
    }

    fn word_text(&self) -> Option<&str> {
        match self {
            Tok::Word { text, .. } => Some(text),
            _ => None,
        }
    }

    fn upper(&self) -> Option<&str> {
        match self {
            Tok::Word { upper, .. } => Some(upper),
            _ => None,
        }
    }
}

fn is_word_start(c: char) -> bool {
    c.is_alphabetic() || c == '_' || c == '#'
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '#' || c == '$' || c == '@'
}

fn tokenize(text: &str) -> Vec<Tok> {
    let chars: Vec<char> = text.chars().collect();
    let n = chars.len();
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    let mut toks = Vec::new();
    let mut i = 0;
    while i < n {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '-' && at(i + 1) == '-' {
            while i < n && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == '*' {
            let mut depth = 1usize;
            i += 2;
            while i < n && depth > 0 {
                if chars[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                } else {
                    i += 1;
                }
            }
        } else if c == '\'' || ((c == 'N' || c == 'n') && at(i + 1) == '\'') {
            if c != '\'' {
                i += 1;
            }
            i += 1;
            let mut s = String::new();
            while i < n {
                if chars[i] == '\'' {
                    if at(i + 1) == '\'' {
                        s.push('\'');
                        i += 2;
                    } else {
                        i += 1;
                        break;
                    }
                } else {
                    s.push(chars[i]);
                    i += 1;
                }
            }
            toks.push(Tok::Str(s));
        } else if c == '[' || c == '"' {
            let close = if c == '[' { ']' } else { '"' };
            i += 1;
            let mut s = String::new();
            while i < n {
                if chars[i] == close {
                    if at(i + 1) == close {
                        s.push(close);
                        i += 2;
                    } else {
                        i += 1;
                        break;
                    }
                } else {
                    s.push(chars[i]);
                    i += 1;
                }
            }
            toks.push(Tok::Word {
                upper: s.to_uppercase(),
                text: s,
                quoted: true,
            });
        } else if c == '@' {
            i += 1;
            while i < n && is_word_char(chars[i]) {
                i += 1;
            }
            toks.push(Tok::Var);
        } else if c.is_ascii_digit() {
            while i < n && (chars[i].is_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            toks.push(Tok::Num);
        } else if is_word_start(c) {
            let start = i;
            while i < n && is_word_char(chars[i]) {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            toks.push(Tok::Word {
                upper: text.to_uppercase(),
                text,
                quoted: false,
            });
        } else if c == '*' && at(i + 1) == '=' {
            toks.push(Tok::StarEq);
            i += 2;
        } else if c == '=' && at(i + 1) == '*' {
            toks.push(Tok::EqStar);
            i += 2;
        } else {
            toks.push(Tok::Sym(c));
            i += 1;
        }
    }
    toks
}

fn clip(s: &str) -> String {
    s.chars().take(200).collect()
}

/// Scans one module's text. `object` names the module in the hits.
pub fn scan_module(object: &str, text: &str) -> Vec<MarkerHit> {
    let toks = tokenize(text);
    let mut hits: Vec<MarkerHit> = Vec::new();
    let mut hit = |marker: Marker, detail: Option<String>| {
        let h = MarkerHit {
            marker,
            object: object.to_owned(),
            detail: detail.map(|d| clip(&d)),
        };
        if !hits.contains(&h) {
            hits.push(h);
        }
    };
    let get = |i: usize| toks.get(i);
    let mut in_where = false;
    for (i, t) in toks.iter().enumerate() {
        match t {
            Tok::Sym(';') => in_where = false,
            Tok::StarEq if in_where => hit(Marker::NonAnsiLeftJoin, None),
            Tok::EqStar if in_where => hit(Marker::NonAnsiRightJoin, None),
            Tok::Word { upper, quoted, .. } => {
                let kw = !quoted;
                match upper.as_str() {
                    "WHERE" | "HAVING" if kw => in_where = true,
                    "SELECT" | "SET" | "UPDATE" | "INSERT" | "DELETE" | "FROM" | "GROUP"
                    | "ORDER" | "BEGIN" | "END"
                        if kw =>
                    {
                        in_where = false
                    }
                    _ => {}
                }
                if upper == "XP_CMDSHELL" {
                    hit(Marker::XpCmdshell, None);
                }
                if SQL_MAIL_PROCEDURES.contains(&upper.as_str()) {
                    hit(Marker::SqlMail, Some(upper.to_ascii_lowercase()));
                }
                if REMOVED_SYSTEM_PROCEDURES.contains(&upper.as_str()) {
                    hit(
                        Marker::RemovedSystemProcedure,
                        Some(upper.to_ascii_lowercase()),
                    );
                }
                if upper == "SP_ADDALIAS" {
                    hit(Marker::AddAlias, None);
                }
                if !kw {
                    continue;
                }
                match upper.as_str() {
                    "FASTFIRSTROW" => hit(Marker::FastFirstRow, None),
                    "SET" if get(i + 1).is_some_and(|n| n.is_kw("DISABLE_DEF_CNST_CHK")) => {
                        hit(Marker::DisableDefCnstChk, None)
                    }
                    "RAISERROR" if matches!(get(i + 1), Some(Tok::Num | Tok::Var)) => {
                        hit(Marker::LegacyRaiserror, None)
                    }
                    "COMPUTE"
                        if get(i + 1)
                            .and_then(Tok::upper)
                            .is_some_and(|a| AGGREGATES.contains(&a))
                            && get(i + 2) == Some(&Tok::Sym('(')) =>
                    {
                        hit(Marker::ComputeClause, None)
                    }
                    "BEGIN"
                        if get(i + 1).is_some_and(|n| n.is_kw("DISTRIBUTED"))
                            && get(i + 2)
                                .is_some_and(|n| n.is_kw("TRAN") || n.is_kw("TRANSACTION")) =>
                    {
                        hit(Marker::DistributedTransaction, None)
                    }
                    "BULK" if get(i + 1).is_some_and(|n| n.is_kw("INSERT")) => {
                        if let Some(path) = bulk_insert_without_data_source(&toks, i + 2) {
                            hit(Marker::BulkInsert, path);
                        }
                    }
                    "OPENROWSET" if get(i + 1) == Some(&Tok::Sym('(')) => match get(i + 2) {
                        Some(n) if n.is_kw("BULK") => {
                            if let Some(path) = openrowset_bulk_without_data_source(&toks, i + 2) {
                                hit(Marker::OpenRowsetBulk, path);
                            }
                        }
                        Some(Tok::Str(provider)) if !is_sql_provider(provider) => {
                            hit(Marker::OpenRowsetProvider, Some(provider.clone()))
                        }
                        _ => {}
                    },
                    "OPENDATASOURCE" if get(i + 1) == Some(&Tok::Sym('(')) => {
                        if let Some(Tok::Str(provider)) = get(i + 2)
                            && !is_sql_provider(provider)
                        {
                            hit(Marker::OpenDataSource, Some(provider.clone()));
                        }
                    }
                    "OPENQUERY" if get(i + 1) == Some(&Tok::Sym('(')) => {
                        if let Some(server) = get(i + 2).and_then(Tok::word_text) {
                            hit(Marker::RemoteServer, Some(server.to_owned()));
                        }
                    }
                    "AT" if i > 0
                        && get(i - 1) == Some(&Tok::Sym(')'))
                        && !get(i + 1).is_some_and(|n| n.is_kw("TIME")) =>
                    {
                        if let Some(server) = get(i + 1).and_then(Tok::word_text) {
                            hit(Marker::RemoteServer, Some(server.to_owned()));
                        }
                    }
                    "CREATE" | "ALTER" => {
                        let next = get(i + 1);
                        if next.is_some_and(|n| n.is_kw("ASSEMBLY")) {
                            if let Some(path) = assembly_from_file(&toks, i + 2) {
                                hit(Marker::AssemblyFromFile, Some(path));
                            }
                        } else if next.is_some_and(|n| n.is_kw("CRYPTOGRAPHIC"))
                            && get(i + 2).is_some_and(|n| n.is_kw("PROVIDER"))
                        {
                            hit(Marker::CryptographicProvider, None);
                        }
                    }
                    _ => {}
                }
                if (i == 0 || get(i - 1) != Some(&Tok::Sym('.')))
                    && let Some(server) = four_part_server(&toks, i)
                {
                    hit(Marker::RemoteServer, Some(server));
                }
            }
            _ => {}
        }
    }
    hits
}

/// `Some(path)` when the BULK INSERT starting at `start` has no DATA_SOURCE option.
fn bulk_insert_without_data_source(toks: &[Tok], start: usize) -> Option<Option<String>> {
    let mut depth = 0i32;
    let mut path = None;
    let mut seen_from = false;
    for t in toks.iter().skip(start).take(400) {
        match t {
            Tok::Sym('(') => depth += 1,
            Tok::Sym(')') => depth -= 1,
            Tok::Sym(';') if depth <= 0 => break,
            Tok::Word {
                upper,
                quoted: false,
                ..
            } => {
                if upper == "DATA_SOURCE" {
                    return None;
                }
                if depth <= 0 && STATEMENT_STARTS.contains(&upper.as_str()) {
                    break;
                }
                if upper == "FROM" {
                    seen_from = true;
                }
            }
            Tok::Str(s) if seen_from && path.is_none() => path = Some(s.clone()),
            _ => {}
        }
    }
    Some(path)
}

/// `Some(path)` when the OPENROWSET(BULK …) whose BULK is at `bulk` has no DATA_SOURCE.
fn openrowset_bulk_without_data_source(toks: &[Tok], bulk: usize) -> Option<Option<String>> {
    let mut depth = 1i32;
    let mut path = None;
    for t in toks.iter().skip(bulk + 1).take(400) {
        match t {
            Tok::Sym('(') => depth += 1,
            Tok::Sym(')') => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            Tok::Word {
                upper,
                quoted: false,
                ..
            } if upper == "DATA_SOURCE" => return None,
            Tok::Str(s) if path.is_none() => path = Some(s.clone()),
            _ => {}
        }
    }
    Some(path)
}

/// The file path of `CREATE/ALTER ASSEMBLY name [AUTHORIZATION x] FROM 'path'`.
fn assembly_from_file(toks: &[Tok], start: usize) -> Option<String> {
    let from = toks
        .iter()
        .skip(start)
        .take(8)
        .position(|t| t.is_kw("FROM"))?;
    match toks.get(start + from + 1) {
        Some(Tok::Str(path)) => Some(path.clone()),
        _ => None,
    }
}

/// The server of a four-part name starting at `i` (`server.database.schema.object`, empty
/// middle parts allowed).
fn four_part_server(toks: &[Tok], i: usize) -> Option<String> {
    let first = toks.get(i)?.word_text()?.to_owned();
    let mut parts = 1;
    let mut j = i + 1;
    while toks.get(j) == Some(&Tok::Sym('.')) {
        parts += 1;
        j += 1;
        if matches!(toks.get(j), Some(Tok::Word { .. })) {
            j += 1;
        }
    }
    // The last part must be a name, not an empty part.
    let last_is_name = matches!(toks.get(j.wrapping_sub(1)), Some(Tok::Word { .. }));
    (parts == 4 && last_is_name).then_some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn markers(text: &str) -> Vec<(Marker, Option<String>)> {
        let mut v: Vec<_> = scan_module("dbo.p (SQL_STORED_PROCEDURE)", text)
            .into_iter()
            .map(|h| (h.marker, h.detail))
            .collect();
        v.sort();
        v
    }

    fn has(text: &str, m: Marker) -> bool {
        markers(text).iter().any(|(x, _)| *x == m)
    }

    #[test]
    fn comments_and_strings_do_not_count() {
        assert!(has("EXEC master..xp_cmdshell 'dir'", Marker::XpCmdshell));
        assert!(has("EXEC [xp_cmdshell] 'dir'", Marker::XpCmdshell));
        assert!(!has(
            "-- EXEC xp_cmdshell 'dir'\nSELECT 1",
            Marker::XpCmdshell
        ));
        assert!(!has(
            "/* outer /* EXEC xp_cmdshell */ still */ SELECT 1",
            Marker::XpCmdshell
        ));
        assert!(!has("PRINT 'never call xp_cmdshell'", Marker::XpCmdshell));
        assert!(!has("PRINT N'it''s xp_cmdshell'", Marker::XpCmdshell));
    }

    #[test]
    fn bulk_insert_from_file_but_not_from_blob() {
        assert_eq!(
            markers("BULK INSERT dbo.t FROM 'C:\\data\\t.csv' WITH (FIELDTERMINATOR = ',');"),
            vec![(Marker::BulkInsert, Some("C:\\data\\t.csv".into()))]
        );
        assert!(!has(
            "BULK INSERT dbo.t FROM 'data/t.csv' WITH (DATA_SOURCE = 'MyAzureBlobStorage', FORMAT = 'CSV');",
            Marker::BulkInsert
        ));
        // The DATA_SOURCE of a later statement does not excuse this one.
        assert!(has(
            "BULK INSERT dbo.t FROM 'C:\\t.csv'; SELECT * FROM OPENROWSET(BULK 'x', DATA_SOURCE = 'b', SINGLE_CLOB) AS r;",
            Marker::BulkInsert
        ));
    }

    #[test]
    fn openrowset_bulk_and_providers() {
        assert_eq!(
            markers("SELECT * FROM OPENROWSET(BULK 'C:\\x.txt', SINGLE_CLOB) AS r"),
            vec![(Marker::OpenRowsetBulk, Some("C:\\x.txt".into()))]
        );
        assert!(markers(
            "SELECT * FROM OPENROWSET(BULK 'x.txt', DATA_SOURCE = 'MyAzureBlobStorage', SINGLE_CLOB) AS r"
        )
        .is_empty());
        assert_eq!(
            markers(
                "SELECT * FROM OPENROWSET('Microsoft.ACE.OLEDB.12.0', 'Excel 12.0;Database=C:\\a.xlsx', 'SELECT * FROM [S$]')"
            ),
            vec![(
                Marker::OpenRowsetProvider,
                Some("Microsoft.ACE.OLEDB.12.0".into())
            )]
        );
        assert!(markers("SELECT * FROM OPENROWSET('MSOLEDBSQL', 'Server=x;Trusted_Connection=yes;', 'SELECT 1')").is_empty());
    }

    #[test]
    fn distributed_transactions_and_remote_servers() {
        let m = markers(
            "BEGIN DISTRIBUTED TRANSACTION; UPDATE ORA.sales.dbo.orders SET x = 1; \
             SELECT * FROM OPENQUERY([LEGACY], 'SELECT 1'); EXEC ('SELECT 1') AT Remote2; \
             SELECT CONVERT(datetime2, d) AT TIME ZONE 'UTC' FROM srv..dbo.t; COMMIT;",
        );
        assert_eq!(
            m,
            vec![
                (Marker::DistributedTransaction, None),
                (Marker::RemoteServer, Some("LEGACY".into())),
                (Marker::RemoteServer, Some("ORA".into())),
                (Marker::RemoteServer, Some("Remote2".into())),
                (Marker::RemoteServer, Some("srv".into())),
            ]
        );
        assert!(has(
            "BEGIN DISTRIBUTED TRAN",
            Marker::DistributedTransaction
        ));
        assert!(markers("SELECT * FROM db.dbo.t JOIN dbo.u ON 1 = 1").is_empty());
    }

    #[test]
    fn opendatasource_with_a_non_sql_provider() {
        assert_eq!(
            markers(
                "SELECT * FROM OPENDATASOURCE('Microsoft.ACE.OLEDB.12.0', \
                 'Data Source=C:\\data\\prices.xlsx;Extended Properties=Excel 12.0')...[Sheet1$]"
            ),
            vec![(
                Marker::OpenDataSource,
                Some("Microsoft.ACE.OLEDB.12.0".into())
            )]
        );
        // SQL Server's providers are what the managed instance accepts; the four-part name
        // after the call is not a linked server.
        assert!(
            markers(
                "SELECT * FROM OPENDATASOURCE('SQLNCLI', 'Data Source=Srv;Integrated Security=SSPI').Sales.dbo.Orders"
            )
            .is_empty()
        );
        assert!(markers("PRINT 'OPENDATASOURCE(''OraOLEDB.Oracle'', ''x'')'").is_empty());
    }

    #[test]
    fn assemblies_and_crypto_providers() {
        assert_eq!(
            markers(
                "CREATE ASSEMBLY Util AUTHORIZATION dbo FROM 'C:\\clr\\Util.dll' WITH PERMISSION_SET = SAFE"
            ),
            vec![(Marker::AssemblyFromFile, Some("C:\\clr\\Util.dll".into()))]
        );
        assert!(
            markers("CREATE ASSEMBLY Util FROM 0x4D5A900003 WITH PERMISSION_SET = SAFE").is_empty()
        );
        assert!(has(
            "CREATE CRYPTOGRAPHIC PROVIDER Ekm FROM FILE = 'C:\\ekm.dll'",
            Marker::CryptographicProvider
        ));
    }

    #[test]
    fn legacy_syntax() {
        assert!(has("SELECT a FROM t COMPUTE SUM(a)", Marker::ComputeClause));
        assert!(!has("SELECT compute FROM t", Marker::ComputeClause));
        assert!(has(
            "SET DISABLE_DEF_CNST_CHK ON",
            Marker::DisableDefCnstChk
        ));
        assert!(has(
            "SELECT * FROM t WITH (FASTFIRSTROW)",
            Marker::FastFirstRow
        ));
        assert!(has(
            "SELECT * FROM a, b WHERE a.id *= b.id",
            Marker::NonAnsiLeftJoin
        ));
        assert!(has(
            "SELECT * FROM a, b WHERE a.id =* b.id",
            Marker::NonAnsiRightJoin
        ));
        // Compound assignment is not a join.
        assert!(!has("SET @x *= 2", Marker::NonAnsiLeftJoin));
        assert!(!has(
            "UPDATE t SET qty *= 2 WHERE id = 1",
            Marker::NonAnsiLeftJoin
        ));
        assert!(has("RAISERROR 50001 'old style'", Marker::LegacyRaiserror));
        assert!(has("RAISERROR @code 'old style'", Marker::LegacyRaiserror));
        assert!(!has(
            "RAISERROR ('new style', 16, 1)",
            Marker::LegacyRaiserror
        ));
        assert_eq!(
            markers("EXEC master.dbo.xp_sendmail @recipients = 'a'"),
            vec![(Marker::SqlMail, Some("xp_sendmail".into()))]
        );
        assert!(!has(
            "EXEC msdb.dbo.sp_send_dbmail @recipients = 'a'",
            Marker::SqlMail
        ));
        assert_eq!(
            markers("EXEC sp_dboption 'db', 'read only', 'TRUE'"),
            vec![(Marker::RemovedSystemProcedure, Some("sp_dboption".into()))]
        );
        assert!(has("EXEC sp_addalias 'login', 'dbo'", Marker::AddAlias));
    }

    #[test]
    fn the_six_removed_system_procedures_of_the_rule_page_are_recognised() {
        for (call, proc) in [
            ("EXEC sp_dboption 'db', 'read only', 'TRUE'", "sp_dboption"),
            ("EXEC sp_addserver 'NEWNAME', 'local'", "sp_addserver"),
            ("EXEC dbo.sp_dropalias 'DOMAIN\\old'", "sp_dropalias"),
            (
                "EXEC master.dbo.sp_ActiveDirectory_Obj @Action = 'create'",
                "sp_activedirectory_obj",
            ),
            (
                "EXECUTE [sp_activedirectory_scp] @Action = 'create'",
                "sp_activedirectory_scp",
            ),
            (
                "EXEC sys.sp_activedirectory_start",
                "sp_activedirectory_start",
            ),
        ] {
            assert_eq!(
                markers(call),
                vec![(Marker::RemovedSystemProcedure, Some(proc.into()))],
                "{call}"
            );
        }
        // A name that merely starts like one, a comment and a string are not calls.
        assert!(markers("EXEC sp_addserverrole 'x'").is_empty());
        assert!(markers("-- EXEC sp_addserver 'x'\nPRINT 'sp_dropalias'").is_empty());
    }

    #[test]
    fn hits_are_deduplicated_per_object() {
        let hits = scan_module("dbo.p", "EXEC xp_cmdshell 'a'; EXEC xp_cmdshell 'b';");
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].object, "dbo.p");
    }

    proptest::proptest! {
        #[test]
        fn scanning_never_panics(text in ".{0,300}") {
            let _ = scan_module("x", &text);
        }

        #[test]
        fn scanning_sql_like_text_never_panics(
            text in "(BULK|INSERT|OPENROWSET|\\(|\\)|'|\\[|\\]|\\.|AT|FROM|ASSEMBLY|CREATE|--|/\\*|\\*/|\\*=|=\\*| |x|N'|;)*"
        ) {
            let _ = scan_module("x", &text);
        }
    }
}
