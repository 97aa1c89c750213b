//! The DDL forms of the link (milink-facts §1.4, §1.5, §2, §4), read as SQL Server's grammar
//! states them: options in parentheses in any order, keywords case-insensitive, names plain or
//! delimited, strings `'…'` or `N'…'`.

use crate::lifecycle::AvailabilityMode;
use crate::secret::Secret;
use crate::time::Date;

use super::super::super::tds::SqlError;
use super::ast::{Ddl, EndpointBody, EndpointEncryption, EndpointState, ReplicaOptions};
use super::parse::Parser;

impl Parser<'_> {
    pub(super) fn ddl(&mut self) -> Result<Ddl, SqlError> {
        let verb = self.one_of(&["CREATE", "ALTER", "DROP"])?;
        match verb.as_str() {
            "CREATE" => {
                if self.eat_word("MASTER") {
                    self.expect_words(&["KEY", "ENCRYPTION", "BY", "PASSWORD"])?;
                    self.expect_punct("=")?;
                    let password = Secret::new(self.string()?);
                    return Ok(Ddl::CreateMasterKey { password });
                }
                if self.eat_word("CERTIFICATE") {
                    return self.create_certificate();
                }
                if self.eat_word("ENDPOINT") {
                    let name = self.ident()?;
                    if self.eat_word("AUTHORIZATION") {
                        self.ident()?;
                    }
                    let body = self.endpoint_body(true)?;
                    return Ok(Ddl::CreateEndpoint { name, body });
                }
                self.expect_words(&["AVAILABILITY", "GROUP"])?;
                self.create_availability_group()
            }
            "ALTER" => {
                if self.eat_word("ENDPOINT") {
                    let name = self.ident()?;
                    let body = self.endpoint_body(false)?;
                    return Ok(Ddl::AlterEndpoint { name, body });
                }
                self.expect_words(&["AVAILABILITY", "GROUP"])?;
                self.alter_availability_group()
            }
            _ => {
                if self.eat_word("CERTIFICATE") {
                    return self.ident().map(Ddl::DropCertificate);
                }
                if self.eat_word("ENDPOINT") {
                    return self.ident().map(Ddl::DropEndpoint);
                }
                self.expect_words(&["AVAILABILITY", "GROUP"])?;
                self.ident().map(Ddl::DropAvailabilityGroup)
            }
        }
    }

    fn create_certificate(&mut self) -> Result<Ddl, SqlError> {
        let name = self.ident()?;
        if self.eat_word("AUTHORIZATION") {
            self.ident()?;
        }
        if self.eat_word("FROM") {
            self.expect_word("BINARY")?;
            self.expect_punct("=")?;
            let der = match self.peek().map(|t| &t.kind) {
                Some(super::token::TokenKind::Binary(b)) => b.clone(),
                _ => return Err(self.error()),
            };
            self.pos += 1;
            return Ok(Ddl::CreateCertificateFromBinary { name, der });
        }
        self.expect_word("WITH")?;
        let mut subject = None;
        let mut expiry = None;
        loop {
            let option = self.option_name()?;
            self.expect_punct("=")?;
            let at = self.pos;
            let value = self.string()?;
            match option.as_str() {
                "SUBJECT" if subject.is_none() => subject = Some(value),
                "EXPIRY_DATE" if expiry.is_none() => {
                    expiry = Some(sql_date(&value).ok_or_else(|| bad_date(&value))?);
                }
                "START_DATE" => {
                    sql_date(&value).ok_or_else(|| bad_date(&value))?;
                }
                _ => {
                    self.pos = at.saturating_sub(2);
                    return Err(self.error());
                }
            }
            if !self.eat_punct(",") {
                break;
            }
        }
        let Some(subject) = subject else {
            return Err(self.error());
        };
        Ok(Ddl::CreateCertificate {
            name,
            subject,
            expiry,
        })
    }

    fn endpoint_body(&mut self, create: bool) -> Result<EndpointBody, SqlError> {
        let mut body = EndpointBody::default();
        if self.eat_word("STATE") {
            self.expect_punct("=")?;
            body.state = Some(
                match self.one_of(&["STARTED", "STOPPED", "DISABLED"])?.as_str() {
                    "STARTED" => EndpointState::Started,
                    "STOPPED" => EndpointState::Stopped,
                    _ => EndpointState::Disabled,
                },
            );
        }
        if self.eat_word("AS") {
            self.expect_word("TCP")?;
            self.expect_punct("(")?;
            loop {
                match self.one_of(&["LISTENER_PORT", "LISTENER_IP"])?.as_str() {
                    "LISTENER_PORT" => {
                        self.expect_punct("=")?;
                        body.port = Some(self.small_number()?);
                    }
                    _ => {
                        self.expect_punct("=")?;
                        if !self.eat_word("ALL") {
                            self.expect_punct("(")?;
                            body.listener_ip = Some(self.string()?);
                            self.expect_punct(")")?;
                        }
                    }
                }
                if !self.eat_punct(",") {
                    break;
                }
            }
            self.expect_punct(")")?;
        } else if create {
            return Err(self.error());
        }
        if self.eat_word("FOR") {
            self.expect_word("DATABASE_MIRRORING")?;
            body.mirroring = true;
            self.expect_punct("(")?;
            loop {
                let option = self.one_of(&["ROLE", "AUTHENTICATION", "ENCRYPTION"])?;
                self.expect_punct("=")?;
                match option.as_str() {
                    "ROLE" => body.role = Some(self.one_of(&["WITNESS", "PARTNER", "ALL"])?),
                    "AUTHENTICATION" => self.authentication(&mut body)?,
                    _ => {
                        let mode = self.one_of(&["DISABLED", "SUPPORTED", "REQUIRED"])?;
                        let mut algorithms = Vec::new();
                        if self.eat_word("ALGORITHM") {
                            algorithms.push(self.one_of(&["AES", "RC4"])?);
                            if self.is_word("AES") || self.is_word("RC4") {
                                algorithms.push(self.one_of(&["AES", "RC4"])?);
                            }
                        }
                        body.encryption = Some(EndpointEncryption { mode, algorithms });
                    }
                }
                if !self.eat_punct(",") {
                    break;
                }
            }
            self.expect_punct(")")?;
        } else if create {
            return Err(self.error());
        }
        if !create && body == EndpointBody::default() {
            return Err(self.error());
        }
        Ok(body)
    }

    /// `WINDOWS [NTLM|KERBEROS|NEGOTIATE] [CERTIFICATE name]` or
    /// `CERTIFICATE name [WINDOWS [NTLM|KERBEROS|NEGOTIATE]]`.
    fn authentication(&mut self, body: &mut EndpointBody) -> Result<(), SqlError> {
        let windows = |p: &mut Self| -> Result<String, SqlError> {
            let mut w = "WINDOWS".to_string();
            if let Ok(kind) = p.one_of(&["NTLM", "KERBEROS", "NEGOTIATE"]) {
                w = format!("WINDOWS {kind}");
            }
            Ok(w)
        };
        if self.eat_word("WINDOWS") {
            body.windows_auth = Some(windows(self)?);
            if self.eat_word("CERTIFICATE") {
                body.certificate = Some(self.ident()?);
            }
        } else {
            self.expect_word("CERTIFICATE")?;
            body.certificate = Some(self.ident()?);
            if self.eat_word("WINDOWS") {
                body.windows_auth = Some(windows(self)?);
            }
        }
        Ok(())
    }

    fn create_availability_group(&mut self) -> Result<Ddl, SqlError> {
        let name = self.ident()?;
        let mut cluster_type = None;
        if self.eat_word("WITH") {
            self.expect_punct("(")?;
            if self.eat_word("DISTRIBUTED") {
                self.expect_punct(")")?;
                self.expect_words(&["AVAILABILITY", "GROUP", "ON"])?;
                let groups = self.replica_list(&[
                    "LISTENER_URL",
                    "AVAILABILITY_MODE",
                    "FAILOVER_MODE",
                    "SEEDING_MODE",
                    "SESSION_TIMEOUT",
                ])?;
                if groups.len() != 2 {
                    return Err(self.error());
                }
                return Ok(Ddl::CreateDistributedAvailabilityGroup { name, groups });
            }
            loop {
                let option = self.option_name()?;
                match option.as_str() {
                    "BASIC" | "CONTAINED" => {}
                    "CLUSTER_TYPE" => {
                        self.expect_punct("=")?;
                        cluster_type = Some(self.one_of(&["WSFC", "EXTERNAL", "NONE"])?);
                    }
                    "DB_FAILOVER" => {
                        self.expect_punct("=")?;
                        self.one_of(&["ON", "OFF"])?;
                    }
                    "DTC_SUPPORT" => {
                        self.expect_punct("=")?;
                        self.one_of(&["PER_DB", "NONE"])?;
                    }
                    "FAILURE_CONDITION_LEVEL"
                    | "HEALTH_CHECK_TIMEOUT"
                    | "REQUIRED_SYNCHRONIZED_SECONDARIES_TO_COMMIT" => {
                        self.expect_punct("=")?;
                        self.small_number()?;
                    }
                    _ => {
                        self.pos -= 1;
                        return Err(self.error());
                    }
                }
                if !self.eat_punct(",") {
                    break;
                }
            }
            self.expect_punct(")")?;
        }
        self.expect_word("FOR")?;
        let mut databases = Vec::new();
        if self.eat_word("DATABASE") {
            loop {
                databases.push(self.ident()?);
                if !self.eat_punct(",") {
                    break;
                }
            }
        }
        self.expect_words(&["REPLICA", "ON"])?;
        let replicas = self.replica_list(&[
            "ENDPOINT_URL",
            "AVAILABILITY_MODE",
            "FAILOVER_MODE",
            "SEEDING_MODE",
            "SESSION_TIMEOUT",
            "BACKUP_PRIORITY",
            "SECONDARY_ROLE",
            "PRIMARY_ROLE",
        ])?;
        if replicas.iter().any(|r| {
            r.endpoint_url.is_none() || r.availability_mode.is_none() || r.failover_mode.is_none()
        }) {
            return Err(self.error());
        }
        Ok(Ddl::CreateAvailabilityGroup {
            name,
            cluster_type,
            databases,
            replicas,
        })
    }

    fn alter_availability_group(&mut self) -> Result<Ddl, SqlError> {
        let name = self.ident()?;
        let action = self.one_of(&[
            "GRANT",
            "MODIFY",
            "FAILOVER",
            "FORCE_FAILOVER_ALLOW_DATA_LOSS",
            "SET",
        ])?;
        match action.as_str() {
            "GRANT" => {
                self.expect_words(&["CREATE", "ANY", "DATABASE"])?;
                Ok(Ddl::GrantCreateAnyDatabase(name))
            }
            "MODIFY" => {
                self.expect_words(&["AVAILABILITY", "GROUP", "ON"])?;
                let groups = self.replica_list(&[
                    "LISTENER_URL",
                    "AVAILABILITY_MODE",
                    "FAILOVER_MODE",
                    "SEEDING_MODE",
                    "SESSION_TIMEOUT",
                ])?;
                Ok(Ddl::ModifyDistributed { name, groups })
            }
            "FAILOVER" => Ok(Ddl::Failover(name)),
            "FORCE_FAILOVER_ALLOW_DATA_LOSS" => Ok(Ddl::ForceFailover(name)),
            _ => {
                self.expect_punct("(")?;
                self.expect_word("ROLE")?;
                self.expect_punct("=")?;
                self.expect_word("SECONDARY")?;
                self.expect_punct(")")?;
                Ok(Ddl::SetRoleSecondary(name))
            }
        }
    }

    /// `N'name' WITH (option = value, …) [, N'name' WITH (…)]…`, options from `allowed`.
    fn replica_list(&mut self, allowed: &[&str]) -> Result<Vec<ReplicaOptions>, SqlError> {
        let mut out = Vec::new();
        loop {
            let mut r = ReplicaOptions {
                name: self.string()?,
                ..ReplicaOptions::default()
            };
            self.expect_word("WITH")?;
            self.expect_punct("(")?;
            loop {
                let option = self.one_of(allowed)?;
                if option.ends_with("_ROLE") {
                    self.expect_punct("(")?;
                    loop {
                        let sub = self.one_of(&["ALLOW_CONNECTIONS", "READ_ONLY_ROUTING_URL"])?;
                        self.expect_punct("=")?;
                        if sub == "ALLOW_CONNECTIONS" {
                            let v = self.one_of(&["NO", "READ_ONLY", "READ_WRITE", "ALL"])?;
                            if option == "SECONDARY_ROLE" {
                                r.secondary_allow_connections = Some(v);
                            }
                        } else {
                            self.string()?;
                        }
                        if !self.eat_punct(",") {
                            break;
                        }
                    }
                    self.expect_punct(")")?;
                } else {
                    self.expect_punct("=")?;
                    self.replica_option(&option, &mut r)?;
                }
                if !self.eat_punct(",") {
                    break;
                }
            }
            self.expect_punct(")")?;
            out.push(r);
            if !self.eat_punct(",") {
                return Ok(out);
            }
        }
    }

    fn replica_option(&mut self, option: &str, r: &mut ReplicaOptions) -> Result<(), SqlError> {
        match option {
            "ENDPOINT_URL" => r.endpoint_url = Some(self.string()?),
            "LISTENER_URL" => r.listener_url = Some(self.string()?),
            "AVAILABILITY_MODE" => {
                r.availability_mode = Some(
                    match self
                        .one_of(&[
                            "SYNCHRONOUS_COMMIT",
                            "ASYNCHRONOUS_COMMIT",
                            "CONFIGURATION_ONLY",
                        ])?
                        .as_str()
                    {
                        "SYNCHRONOUS_COMMIT" => AvailabilityMode::SynchronousCommit,
                        "ASYNCHRONOUS_COMMIT" => AvailabilityMode::AsynchronousCommit,
                        _ => {
                            self.pos -= 1;
                            return Err(SqlError::new(
                                41199,
                                16,
                                "AVAILABILITY_MODE = CONFIGURATION_ONLY is not supported by the \
                                 simulated SQL Server.",
                            ));
                        }
                    },
                );
            }
            "FAILOVER_MODE" => {
                r.failover_mode = Some(self.one_of(&["AUTOMATIC", "MANUAL", "EXTERNAL"])?);
            }
            "SEEDING_MODE" => r.seeding_mode = Some(self.one_of(&["AUTOMATIC", "MANUAL"])?),
            "SESSION_TIMEOUT" => r.session_timeout = Some(self.small_number()?),
            _ => {
                self.small_number()?;
            }
        }
        Ok(())
    }
}

/// A date as SQL Server reads it in a string: `YYYYMMDD`, `YYYY-MM-DD` or `MM/DD/YYYY`
/// (us_english), with an optional time after a space or `T`.
pub(super) fn sql_date(value: &str) -> Option<Date> {
    let day = value.split([' ', 'T']).next()?;
    let num = |s: &str| s.parse::<u16>().ok();
    if day.len() == 8 && day.chars().all(|c| c.is_ascii_digit()) {
        let y = num(day.get(0..4)?)?;
        let m = u8::try_from(num(day.get(4..6)?)?).ok()?;
        let d = u8::try_from(num(day.get(6..8)?)?).ok()?;
        return Date::new(y, m, d).ok();
    }
    if let [y, m, d] = day.split('-').collect::<Vec<_>>().as_slice() {
        return Date::new(
            num(y)?,
            u8::try_from(num(m)?).ok()?,
            u8::try_from(num(d)?).ok()?,
        )
        .ok();
    }
    if let [m, d, y] = day.split('/').collect::<Vec<_>>().as_slice() {
        return Date::new(
            num(y)?,
            u8::try_from(num(m)?).ok()?,
            u8::try_from(num(d)?).ok()?,
        )
        .ok();
    }
    None
}

fn bad_date(value: &str) -> SqlError {
    SqlError::new(
        241,
        16,
        format!(
            "Conversion failed when converting date and/or time from character string '{value}'."
        ),
    )
}
