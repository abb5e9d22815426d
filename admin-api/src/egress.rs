//! Every outbound call admin-api makes (the provider-key "test" and spend-alert webhooks) goes
//! through here.
//!
//! The provider's host is resolved once, every address that is not public (the one table in
//! `shared::net`, which ingress applies too: loopback, private, link-local, CGNAT, special
//! ranges) is dropped unless the provider has `allow_private_network`, and the HTTP client is
//! pinned to the checked addresses, so a DNS answer that changes between the check and the
//! connection (rebinding) cannot reach anything else. Redirects are never followed and no
//! environment proxy is used: the request goes to the checked address or nowhere.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use shared::config::Provider;
use shared::net::is_public_address;

use crate::error::ApiError;

fn refused(detail: String) -> ApiError {
    ApiError::BadRequest {
        code: "private_network_refused",
        message: format!(
            "{detail}; a provider reaches private, loopback, link-local or other special addresses only with allow_private_network"
        ),
        field: Some("base_url".into()),
    }
}

/// Resolves the provider's base URL and builds a client that can only reach the checked
/// addresses.
///
/// # Errors
/// 400 `private_network_refused` when the host resolves only to addresses the provider may
/// not use, 400 `unresolvable_host` when it does not resolve, 400 on a malformed URL.
pub async fn guarded_client(provider: &Provider) -> Result<reqwest::Client, ApiError> {
    guarded_client_for(
        &provider.base_url,
        provider.allow_private_network,
        Duration::from_millis(u64::from(provider.timeouts.connect_ms)),
    )
    .await
}

/// [`guarded_client`] for any `url` (a webhook's): only public addresses unless
/// `allow_private`, pinned, no redirects, no proxy, connecting within `connect_timeout` (10 s
/// at most).
///
/// # Errors
/// As [`guarded_client`].
pub async fn guarded_client_for(
    url: &str,
    allow_private: bool,
    connect_timeout: Duration,
) -> Result<reqwest::Client, ApiError> {
    let url = crate::resources::validate::base_url("base_url", url)?;
    let port = url.port_or_known_default().unwrap_or(443);
    let builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(connect_timeout.min(Duration::from_secs(10)))
        .dns_resolver(Arc::new(GuardedResolver { allow_private }));
    let builder = match url.host() {
        Some(url::Host::Ipv4(v4)) => {
            check_literal(IpAddr::V4(v4), allow_private)?;
            builder
        }
        Some(url::Host::Ipv6(v6)) => {
            check_literal(IpAddr::V6(v6), allow_private)?;
            builder
        }
        Some(url::Host::Domain(domain)) => {
            let addresses = resolve(domain, port, allow_private).await?;
            builder.resolve_to_addrs(domain, &addresses)
        }
        None => return Err(ApiError::invalid("base_url", "base_url must name a host")),
    };
    builder.build().map_err(ApiError::internal)
}

fn check_literal(ip: IpAddr, allow_private: bool) -> Result<(), ApiError> {
    if allow_private || is_public_address(ip) {
        Ok(())
    } else {
        Err(refused(format!(
            "the base URL is the non-public address {ip}"
        )))
    }
}

async fn resolve(
    domain: &str,
    port: u16,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, ApiError> {
    let resolved: Vec<SocketAddr> = tokio::net::lookup_host((domain, port))
        .await
        .map_err(|_| ApiError::BadRequest {
            code: "unresolvable_host",
            message: "the provider's host name does not resolve".into(),
            field: Some("base_url".into()),
        })?
        .collect();
    let usable: Vec<SocketAddr> = resolved
        .iter()
        .copied()
        .filter(|address| allow_private || is_public_address(address.ip()))
        .collect();
    if usable.is_empty() {
        return Err(refused(format!(
            "the provider's host resolves only to non-public addresses ({})",
            resolved.len()
        )));
    }
    Ok(usable)
}

/// The resolver for any name not pinned above (there should be none, since redirects are not
/// followed): the same check, so nothing unchecked is ever connected to.
struct GuardedResolver {
    allow_private: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let addresses = resolve(name.as_str(), 0, allow_private).await.map_err(
                |error| -> Box<dyn std::error::Error + Send + Sync> { error.to_string().into() },
            )?;
            let addresses: reqwest::dns::Addrs = Box::new(addresses.into_iter());
            Ok(addresses)
        })
    }
}
