//! Reads of the managed instance through ARM, typed with [`crate::arm::models`]: the instance,
//! its databases, server trust certificates and links. Each request is rendered by
//! [`crate::arm::read_request`]; a list is followed through `nextLink` (on the management
//! endpoint only, as an operation URL is) up to [`MAX_PAGES`] pages.

use std::collections::HashSet;

use serde::de::DeserializeOwned;

use crate::arm::models::{
    self, DistributedAvailabilityGroup, ManagedDatabase, ManagedInstance as ManagedInstanceModel,
    Page, ServerTrustCertificate,
};
use crate::arm::{ArmRead, ArmRequest, Method, read_request};
use crate::lifecycle::LinkName;
use crate::ports::PortError;

use super::http::MALFORMED;
use super::{ArmManagedInstance, get, url_path, url_path_and_query};

/// The most pages a list is followed through; more is an error, not a silent truncation.
pub const MAX_PAGES: usize = 200;

impl ArmManagedInstance {
    /// The managed instance (`GET …/managedInstances/{mi}`).
    pub async fn managed_instance(&self) -> Result<ManagedInstanceModel, PortError> {
        let request = read_request(ArmRead::Instance, &self.instance);
        let what = format!("GET {}", request.path);
        let answer = self.get_answer(&request, &what).await?;
        if answer.status != 200 {
            return Err(answer.error(&request));
        }
        decode(&answer.json(&what)?, &what)
    }

    /// The instance's managed databases (`GET …/databases`, every page).
    pub async fn databases(&self) -> Result<Vec<ManagedDatabase>, PortError> {
        self.read_all(&read_request(ArmRead::Databases, &self.instance))
            .await
    }

    /// The instance's server trust certificates (`GET …/serverTrustCertificates`, every page).
    pub async fn server_trust_certificates(
        &self,
    ) -> Result<Vec<ServerTrustCertificate>, PortError> {
        self.read_all(&read_request(ArmRead::TrustCertificates, &self.instance))
            .await
    }

    /// The server trust certificate that holds the key `der`, whatever its name; else, with
    /// `name`, the certificate of that name (which then holds another key:
    /// [`ServerTrustCertificate::holds`] tells). `None` when there is neither.
    pub async fn find_server_trust_certificate(
        &self,
        der: &[u8],
        name: Option<&str>,
    ) -> Result<Option<ServerTrustCertificate>, PortError> {
        let certificates = self.server_trust_certificates().await?;
        let found = match name {
            Some(name) => models::find_certificate(&certificates, der, name),
            None => certificates.iter().find(|c| c.holds(der)),
        };
        Ok(found.cloned())
    }

    /// The instance's links (`GET …/distributedAvailabilityGroups`, every page).
    pub async fn links(&self) -> Result<Vec<DistributedAvailabilityGroup>, PortError> {
        self.read_all(&read_request(ArmRead::Links, &self.instance))
            .await
    }

    /// One link (`GET …/distributedAvailabilityGroups/{link}`); `None` if there is none.
    pub async fn link(
        &self,
        link: &LinkName,
    ) -> Result<Option<DistributedAvailabilityGroup>, PortError> {
        self.read_one(&read_request(ArmRead::Link(link.as_str()), &self.instance))
            .await
    }

    pub(super) async fn get_answer(
        &self,
        request: &ArmRequest,
        what: &str,
    ) -> Result<super::http::Answer, PortError> {
        let url = request.url(&self.options.endpoint);
        self.send(Method::Get, &url, None, what).await
    }

    /// One resource; `None` on 404.
    pub(super) async fn read_one<T: DeserializeOwned>(
        &self,
        request: &ArmRequest,
    ) -> Result<Option<T>, PortError> {
        let what = format!("GET {}", request.path);
        let answer = self.get_answer(request, &what).await?;
        match answer.status {
            200 => decode(&answer.json(&what)?, &what).map(Some),
            404 => Ok(None),
            _ => Err(answer.error(request)),
        }
    }

    /// Every item of a list, following `nextLink`.
    pub(super) async fn read_all<T: DeserializeOwned>(
        &self,
        request: &ArmRequest,
    ) -> Result<Vec<T>, PortError> {
        let what = format!("GET {}", request.path);
        let mut url = request.url(&self.options.endpoint);
        let mut path = request.clone();
        let mut seen = HashSet::new();
        let mut items = Vec::new();
        for _ in 0..MAX_PAGES {
            let answer = self.send(Method::Get, &url, None, &what).await?;
            if answer.status != 200 {
                return Err(answer.error(&path));
            }
            let page: Page<T> = decode(&answer.json(&what)?, &what)?;
            items.extend(page.value);
            let Some(next) = page.next_link.filter(|n| !n.trim().is_empty()) else {
                return Ok(items);
            };
            // The token goes to the management endpoint only, whatever host `nextLink` names.
            url = format!(
                "{}{}",
                self.options.endpoint.trim_end_matches('/'),
                url_path_and_query(&next)
            );
            if !seen.insert(url.clone()) {
                return Err(PortError::permanent(
                    MALFORMED,
                    format!("{what}: nextLink came back to a page already read ({next})"),
                ));
            }
            path = get(url_path(&next));
        }
        Err(PortError::permanent(
            MALFORMED,
            format!("{what}: more than {MAX_PAGES} pages; not read to the end"),
        ))
    }
}

pub(super) fn decode<T: DeserializeOwned>(
    body: &serde_json::Value,
    what: &str,
) -> Result<T, PortError> {
    T::deserialize(body).map_err(|e| {
        PortError::permanent(
            MALFORMED,
            format!("ARM's answer to {what} is not the expected resource: {e}"),
        )
    })
}
