//! The credential ARM's bearer tokens come from, chosen from environment variables as Azure's
//! SDKs do (azure_identity 1.0 has no `DefaultAzureCredential`; this is its small, explicit
//! replacement), or named explicitly with [`CredentialChoice`].
//!
//! The chain, first match wins (a variable set to the empty string counts as unset):
//!
//! | # | variables | credential |
//! |---|---|---|
//! | 1 | `AZURE_FEDERATED_TOKEN_FILE` + `AZURE_CLIENT_ID` + `AZURE_TENANT_ID` | workload identity (AKS, federated credentials) |
//! | 2 | `AZURE_CLIENT_SECRET` + `AZURE_CLIENT_ID` + `AZURE_TENANT_ID` | service principal with a client secret |
//! | 3 | `IDENTITY_ENDPOINT` or `MSI_ENDPOINT` (optional `AZURE_CLIENT_ID`: a user-assigned identity) | managed identity |
//! | 4 | none of the above, and no `AZURE_CLIENT_ID` | the Azure CLI's signed-in account (`az login`; `AZURE_TENANT_ID` picks the tenant) |
//!
//! A combination set in part is an error naming what is set and what is missing
//! ([`CredentialError::Incomplete`]), never a silent fall-through to the next credential: an
//! `AZURE_CLIENT_SECRET` without `AZURE_TENANT_ID` fails rather than signing in as whoever `az`
//! holds. An `AZURE_CLIENT_ID` alone is an error too (it would be ignored); on a virtual machine
//! whose managed identity has no environment variable (IMDS), choose
//! [`CredentialChoice::ManagedIdentity`] explicitly.
//!
//! azure_identity 1.0 serves managed identities through App Service's `IDENTITY_ENDPOINT` +
//! `IDENTITY_HEADER` and IMDS; Cloud Shell and Azure ML (`MSI_ENDPOINT`) are refused when the
//! credential is built ([`CredentialError::Unavailable`]).
//!
//! Nothing here logs or shows a secret: [`CredentialChoice`]'s `Debug` and `Display` name the
//! credential and its ids only, and the client secret is held as a [`Secret`].

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use azure_core::credentials::TokenCredential;
use azure_identity::{
    AzureCliCredential, AzureCliCredentialOptions, ClientSecretCredential,
    ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId,
    WorkloadIdentityCredential, WorkloadIdentityCredentialOptions,
};

use crate::secret::Secret;

/// `AZURE_TENANT_ID`: the Microsoft Entra tenant (directory) id.
pub const AZURE_TENANT_ID: &str = "AZURE_TENANT_ID";
/// `AZURE_CLIENT_ID`: the application (client) id, or a user-assigned managed identity's.
pub const AZURE_CLIENT_ID: &str = "AZURE_CLIENT_ID";
/// `AZURE_CLIENT_SECRET`: a service principal's client secret.
pub const AZURE_CLIENT_SECRET: &str = "AZURE_CLIENT_SECRET";
/// `AZURE_FEDERATED_TOKEN_FILE`: the projected service account token of workload identity.
pub const AZURE_FEDERATED_TOKEN_FILE: &str = "AZURE_FEDERATED_TOKEN_FILE";
/// `IDENTITY_ENDPOINT`: the managed identity endpoint of App Service, Functions, Container Apps
/// and Arc.
pub const IDENTITY_ENDPOINT: &str = "IDENTITY_ENDPOINT";
/// `MSI_ENDPOINT`: the older managed identity endpoint (Cloud Shell, Azure ML).
pub const MSI_ENDPOINT: &str = "MSI_ENDPOINT";

/// Which credential hands out ARM's tokens, with what it needs.
#[derive(Clone, PartialEq, Eq)]
pub enum CredentialChoice {
    /// Workload identity: a federated token read from `token_file` exchanged for the app's.
    WorkloadIdentity {
        /// The tenant id.
        tenant_id: String,
        /// The application (client) id.
        client_id: String,
        /// The file holding the federated (service account) token.
        token_file: PathBuf,
    },
    /// A service principal signing in with a client secret.
    ClientSecret {
        /// The tenant id.
        tenant_id: String,
        /// The application (client) id.
        client_id: String,
        /// The client secret (never shown).
        secret: Secret,
    },
    /// The managed identity of the host: system-assigned, or the user-assigned one `client_id`
    /// names.
    ManagedIdentity {
        /// A user-assigned identity's client id; `None` for the system-assigned identity.
        client_id: Option<String>,
    },
    /// The account the Azure CLI is signed in with (`az login`).
    AzureCli {
        /// The tenant to ask tokens of; `None` for the CLI's default.
        tenant_id: Option<String>,
    },
}

impl fmt::Debug for CredentialChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialChoice::WorkloadIdentity {
                tenant_id,
                client_id,
                token_file,
            } => f
                .debug_struct("WorkloadIdentity")
                .field("tenant_id", tenant_id)
                .field("client_id", client_id)
                .field("token_file", token_file)
                .finish(),
            CredentialChoice::ClientSecret {
                tenant_id,
                client_id,
                ..
            } => f
                .debug_struct("ClientSecret")
                .field("tenant_id", tenant_id)
                .field("client_id", client_id)
                .finish_non_exhaustive(),
            CredentialChoice::ManagedIdentity { client_id } => f
                .debug_struct("ManagedIdentity")
                .field("client_id", client_id)
                .finish(),
            CredentialChoice::AzureCli { tenant_id } => f
                .debug_struct("AzureCli")
                .field("tenant_id", tenant_id)
                .finish(),
        }
    }
}

impl fmt::Display for CredentialChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialChoice::WorkloadIdentity { client_id, .. } => {
                write!(f, "workload identity (client id {client_id})")
            }
            CredentialChoice::ClientSecret {
                tenant_id,
                client_id,
                ..
            } => write!(
                f,
                "client secret of client id {client_id} in tenant {tenant_id}"
            ),
            CredentialChoice::ManagedIdentity { client_id: None } => {
                f.write_str("system-assigned managed identity")
            }
            CredentialChoice::ManagedIdentity {
                client_id: Some(id),
            } => write!(f, "user-assigned managed identity (client id {id})"),
            CredentialChoice::AzureCli { tenant_id: None } => f.write_str("Azure CLI"),
            CredentialChoice::AzureCli { tenant_id: Some(t) } => {
                write!(f, "Azure CLI (tenant {t})")
            }
        }
    }
}

/// Why no credential could be chosen or built. Messages name variables, never their secret
/// values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// A combination of variables is set in part.
    #[error(
        "{credential}: {} set but {} missing; set {} (or unset the ones set){}",
        list(set),
        list(missing),
        list(missing),
        hint_text(hint)
    )]
    Incomplete {
        /// The credential the variables that are set point to.
        credential: &'static str,
        /// The variables of the combination that are set.
        set: Vec<&'static str>,
        /// The variables of the combination that are missing.
        missing: Vec<&'static str>,
        /// What else the user may mean, if anything.
        hint: Option<&'static str>,
    },
    /// azure_identity refused to build the credential (an invalid tenant id, an unsupported
    /// managed identity source, …).
    #[error("the {credential} credential could not be built: {message}")]
    Unavailable {
        /// The credential, as [`CredentialChoice`]'s `Display` names it.
        credential: String,
        /// azure_identity's reason (it holds no secret).
        message: String,
    },
}

fn list(names: &[&'static str]) -> String {
    names.join(" and ")
}

fn hint_text(hint: &Option<&'static str>) -> String {
    hint.map(|h| format!("; {h}")).unwrap_or_default()
}

impl CredentialChoice {
    /// The credential the process environment names (see the module's chain).
    pub fn from_environment() -> Result<CredentialChoice, CredentialError> {
        CredentialChoice::from_lookup(|name| std::env::var(name).ok())
    }

    /// The credential that `lookup` (a variable's value by name) names, by the module's chain.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<CredentialChoice, CredentialError> {
        let var = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let tenant = var(AZURE_TENANT_ID);
        let client = var(AZURE_CLIENT_ID);
        let complete = |credential: &'static str,
                        key: &'static str|
         -> Result<(String, String), CredentialError> {
            let mut set = vec![key];
            let mut missing = Vec::new();
            for (name, value) in [(AZURE_CLIENT_ID, &client), (AZURE_TENANT_ID, &tenant)] {
                if value.is_some() {
                    set.push(name);
                } else {
                    missing.push(name);
                }
            }
            match (&tenant, &client) {
                (Some(t), Some(c)) => Ok((t.clone(), c.clone())),
                _ => Err(CredentialError::Incomplete {
                    credential,
                    set,
                    missing,
                    hint: None,
                }),
            }
        };
        if let Some(file) = var(AZURE_FEDERATED_TOKEN_FILE) {
            let (tenant_id, client_id) = complete("workload identity", AZURE_FEDERATED_TOKEN_FILE)?;
            return Ok(CredentialChoice::WorkloadIdentity {
                tenant_id,
                client_id,
                token_file: PathBuf::from(file),
            });
        }
        if let Some(secret) = var(AZURE_CLIENT_SECRET) {
            let (tenant_id, client_id) = complete("client secret", AZURE_CLIENT_SECRET)?;
            return Ok(CredentialChoice::ClientSecret {
                tenant_id,
                client_id,
                secret: Secret::new(secret),
            });
        }
        if var(IDENTITY_ENDPOINT).is_some() || var(MSI_ENDPOINT).is_some() {
            return Ok(CredentialChoice::ManagedIdentity { client_id: client });
        }
        if client.is_some() {
            let mut set = vec![AZURE_CLIENT_ID];
            if tenant.is_some() {
                set.push(AZURE_TENANT_ID);
            }
            return Err(CredentialError::Incomplete {
                credential: "service principal",
                set,
                missing: vec![AZURE_CLIENT_SECRET, AZURE_FEDERATED_TOKEN_FILE]
                    .into_iter()
                    .chain(tenant.is_none().then_some(AZURE_TENANT_ID))
                    .collect(),
                hint: Some(
                    "a service principal needs AZURE_CLIENT_SECRET or AZURE_FEDERATED_TOKEN_FILE \
                     with AZURE_TENANT_ID; for a user-assigned managed identity without \
                     IDENTITY_ENDPOINT (IMDS) choose the managed identity explicitly; unset \
                     AZURE_CLIENT_ID to use the Azure CLI",
                ),
            });
        }
        Ok(CredentialChoice::AzureCli { tenant_id: tenant })
    }

    /// Builds the credential (no network: tokens are asked for on first use).
    pub fn build(&self) -> Result<Arc<dyn TokenCredential>, CredentialError> {
        let unavailable = |e: azure_core::Error| CredentialError::Unavailable {
            credential: self.to_string(),
            message: e.to_string(),
        };
        let credential: Arc<dyn TokenCredential> = match self {
            CredentialChoice::WorkloadIdentity {
                tenant_id,
                client_id,
                token_file,
            } => WorkloadIdentityCredential::new(Some(WorkloadIdentityCredentialOptions {
                client_id: Some(client_id.clone()),
                tenant_id: Some(tenant_id.clone()),
                token_file_path: Some(token_file.clone()),
                ..Default::default()
            }))
            .map_err(unavailable)?,
            CredentialChoice::ClientSecret {
                tenant_id,
                client_id,
                secret,
            } => ClientSecretCredential::new(
                tenant_id,
                client_id.clone(),
                azure_core::credentials::Secret::new(secret.expose().to_owned()),
                None,
            )
            .map_err(unavailable)?,
            CredentialChoice::ManagedIdentity { client_id } => {
                ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
                    user_assigned_id: client_id.clone().map(UserAssignedId::ClientId),
                    ..Default::default()
                }))
                .map_err(unavailable)?
            }
            CredentialChoice::AzureCli { tenant_id } => {
                AzureCliCredential::new(Some(AzureCliCredentialOptions {
                    tenant_id: tenant_id.clone(),
                    ..Default::default()
                }))
                .map_err(unavailable)?
            }
        };
        Ok(credential)
    }
}

/// One bearer token, handed out as it is: a token obtained elsewhere (`az account
/// get-access-token`), or a test peer's shared token (the simulator's HTTPS server). It does not
/// expire of its own accord: it is valid until ARM stops accepting it. `Debug` never shows it.
#[derive(Clone)]
pub struct StaticToken(Secret);

impl StaticToken {
    /// The credential that hands out `token`.
    pub fn new(token: Secret) -> StaticToken {
        StaticToken(token)
    }
}

impl fmt::Debug for StaticToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StaticToken(***)")
    }
}

#[async_trait::async_trait]
impl TokenCredential for StaticToken {
    async fn get_token(
        &self,
        _scopes: &[&str],
        _options: Option<azure_core::credentials::TokenRequestOptions<'_>>,
    ) -> azure_core::Result<azure_core::credentials::AccessToken> {
        // No expiry of its own: valid until the peer stops accepting it.
        let expires = azure_core::time::OffsetDateTime::from_unix_timestamp(4_102_444_800) // 2100-01-01
            .unwrap_or(azure_core::time::OffsetDateTime::UNIX_EPOCH);
        Ok(azure_core::credentials::AccessToken::new(
            self.0.expose().to_owned(),
            expires,
        ))
    }
}

/// The credential the process environment names (see the module's chain), built; the
/// choice is logged by name, never with a secret.
pub fn credential_from_environment() -> Result<Arc<dyn TokenCredential>, CredentialError> {
    let choice = CredentialChoice::from_environment()?;
    tracing::info!(credential = %choice, "ARM tokens from the environment's credential");
    choice.build()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn choose(vars: &[(&str, &str)]) -> Result<CredentialChoice, CredentialError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        CredentialChoice::from_lookup(|name| map.get(name).cloned())
    }

    const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    const CLIENT: &str = "00000000-0000-0000-0000-0000000000c1";

    #[test]
    fn the_chain_picks_the_first_complete_combination() {
        let workload = choose(&[
            (AZURE_FEDERATED_TOKEN_FILE, "/var/run/token"),
            (AZURE_CLIENT_ID, CLIENT),
            (AZURE_TENANT_ID, TENANT),
            // Workload identity comes first even with a secret set.
            (AZURE_CLIENT_SECRET, "hunter2"),
        ])
        .unwrap();
        assert_eq!(
            workload,
            CredentialChoice::WorkloadIdentity {
                tenant_id: TENANT.into(),
                client_id: CLIENT.into(),
                token_file: PathBuf::from("/var/run/token"),
            }
        );
        let secret = choose(&[
            (AZURE_CLIENT_SECRET, "hunter2"),
            (AZURE_CLIENT_ID, CLIENT),
            (AZURE_TENANT_ID, TENANT),
            (IDENTITY_ENDPOINT, "http://localhost:42356/msi/token"),
        ])
        .unwrap();
        assert!(matches!(
            &secret,
            CredentialChoice::ClientSecret { secret, .. } if secret.expose() == "hunter2"
        ));
        assert_eq!(
            choose(&[(IDENTITY_ENDPOINT, "http://localhost:42356/msi/token")]).unwrap(),
            CredentialChoice::ManagedIdentity { client_id: None }
        );
        assert_eq!(
            choose(&[
                (MSI_ENDPOINT, "http://localhost:50342/oauth2/token"),
                (AZURE_CLIENT_ID, CLIENT)
            ])
            .unwrap(),
            CredentialChoice::ManagedIdentity {
                client_id: Some(CLIENT.into())
            }
        );
        assert_eq!(
            choose(&[]).unwrap(),
            CredentialChoice::AzureCli { tenant_id: None }
        );
        // Empty values are unset.
        assert_eq!(
            choose(&[
                (AZURE_TENANT_ID, TENANT),
                (AZURE_CLIENT_SECRET, " "),
                (AZURE_CLIENT_ID, "")
            ])
            .unwrap(),
            CredentialChoice::AzureCli {
                tenant_id: Some(TENANT.into())
            }
        );
    }

    #[test]
    fn half_set_combinations_name_the_missing_variables() {
        let e = choose(&[(AZURE_CLIENT_SECRET, "hunter2"), (AZURE_CLIENT_ID, CLIENT)]).unwrap_err();
        assert_eq!(
            e,
            CredentialError::Incomplete {
                credential: "client secret",
                set: vec![AZURE_CLIENT_SECRET, AZURE_CLIENT_ID],
                missing: vec![AZURE_TENANT_ID],
                hint: None,
            }
        );
        let text = e.to_string();
        assert!(text.contains("AZURE_TENANT_ID missing"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        let e = choose(&[(AZURE_FEDERATED_TOKEN_FILE, "/t")]).unwrap_err();
        assert!(
            matches!(&e, CredentialError::Incomplete { credential: "workload identity", missing, .. }
                if *missing == vec![AZURE_CLIENT_ID, AZURE_TENANT_ID]),
            "{e:?}"
        );
        let e = choose(&[(AZURE_CLIENT_ID, CLIENT)]).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("AZURE_CLIENT_SECRET"), "{text}");
        assert!(text.contains("unset AZURE_CLIENT_ID"), "{text}");
    }

    #[test]
    fn secrets_are_never_shown() {
        let choice = CredentialChoice::ClientSecret {
            tenant_id: TENANT.into(),
            client_id: CLIENT.into(),
            secret: Secret::new("hunter2"),
        };
        assert!(!format!("{choice:?}").contains("hunter2"));
        assert!(!choice.to_string().contains("hunter2"));
        assert!(choice.to_string().contains(CLIENT));
    }

    #[test]
    fn choices_build_without_the_network_and_bad_ids_are_typed_errors() {
        for choice in [
            CredentialChoice::ClientSecret {
                tenant_id: TENANT.into(),
                client_id: CLIENT.into(),
                secret: Secret::new("hunter2"),
            },
            CredentialChoice::AzureCli {
                tenant_id: Some(TENANT.into()),
            },
        ] {
            assert!(choice.build().is_ok(), "{choice}");
        }
        // Workload identity reads its token file when built.
        let dir = tempfile::tempdir().unwrap();
        let token_file = dir.path().join("token");
        let workload = CredentialChoice::WorkloadIdentity {
            tenant_id: TENANT.into(),
            client_id: CLIENT.into(),
            token_file: token_file.clone(),
        };
        match workload.build() {
            Err(CredentialError::Unavailable { message, .. }) => {
                assert!(message.contains("federated token"), "{message}");
            }
            Err(other) => panic!("{other}"),
            Ok(_) => panic!("a missing token file was accepted"),
        }
        std::fs::write(&token_file, "eyJhbGciOi.e30.sig").unwrap();
        assert!(workload.build().is_ok());
        let bad = CredentialChoice::ClientSecret {
            tenant_id: "not a tenant/..".into(),
            client_id: CLIENT.into(),
            secret: Secret::new("hunter2"),
        };
        match bad.build() {
            Err(CredentialError::Unavailable {
                credential,
                message,
            }) => {
                assert!(credential.contains(CLIENT));
                assert!(!message.contains("hunter2"), "{message}");
            }
            Err(other) => panic!("{other}"),
            Ok(_) => panic!("an invalid tenant id was accepted"),
        }
    }
}
