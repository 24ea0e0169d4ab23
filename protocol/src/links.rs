//! Bootstrap and invitation links.
//!
//! `http(s)://HOST[:PORT]/bootstrap/ORG#TOKEN` and `http(s)://HOST[:PORT]/invitation/ORG#TOKEN`.
//! The token sits in the URL fragment, which browsers and proxies never send to a server, so it
//! does not end up in access logs.

use crate::ids::{BootstrapToken, InvalidName, InvitationToken, OrganizationId};
use std::fmt;
use std::str::FromStr;
use url::Url;

/// Why a link could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// Not a URL at all.
    #[error("not a valid link: {0}")]
    NotAUrl(String),
    /// A URL, but not one of ours.
    #[error("not a Strongroom {expected} link: expected {{server}}/{expected}/ORGANIZATION#TOKEN")]
    WrongShape {
        /// "bootstrap" or "invitation".
        expected: &'static str,
    },
    /// A part of the link is invalid.
    #[error(transparent)]
    InvalidPart(#[from] InvalidName),
}

/// The address of a server: scheme, host and port, no path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerAddr(Url);

impl ServerAddr {
    /// Parses `http(s)://host[:port]`; a path, query or fragment is refused.
    pub fn parse(s: &str) -> Result<Self, LinkError> {
        let url = Url::parse(s).map_err(|e| LinkError::NotAUrl(e.to_string()))?;
        Self::from_url(&url)
    }

    fn from_url(url: &Url) -> Result<Self, LinkError> {
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(LinkError::NotAUrl(format!(
                "{url}: a server address is http(s)://HOST[:PORT]"
            )));
        }
        let mut base = url.clone();
        base.set_path("");
        base.set_query(None);
        base.set_fragment(None);
        Ok(Self(base))
    }

    /// The URL of `path` (which starts with `/`) on this server.
    pub fn join(&self, path: &str) -> String {
        format!("{}{}", self.to_string().trim_end_matches('/'), path)
    }
}

impl fmt::Display for ServerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str().trim_end_matches('/'))
    }
}

fn parse_link(
    s: &str,
    kind: &'static str,
) -> Result<(ServerAddr, OrganizationId, String), LinkError> {
    let url = Url::parse(s.trim()).map_err(|e| LinkError::NotAUrl(e.to_string()))?;
    let server = ServerAddr::from_url(&url)?;
    let wrong = || LinkError::WrongShape { expected: kind };
    let segments: Vec<_> = url.path_segments().ok_or_else(wrong)?.collect();
    let [k, org] = segments.as_slice() else {
        return Err(wrong());
    };
    if *k != kind {
        return Err(wrong());
    }
    let token = url.fragment().ok_or_else(wrong)?.to_owned();
    Ok((server, org.parse()?, token))
}

/// The link a server administrator hands to the person who bootstraps an organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapLink {
    /// The server.
    pub server: ServerAddr,
    /// The organization.
    pub organization: OrganizationId,
    /// The one-time token.
    pub token: BootstrapToken,
}

impl FromStr for BootstrapLink {
    type Err = LinkError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (server, organization, token) = parse_link(s, "bootstrap")?;
        Ok(Self {
            server,
            organization,
            token: token.parse()?,
        })
    }
}

impl fmt::Display for BootstrapLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/bootstrap/{}#{}",
            self.server, self.organization, self.token
        )
    }
}

/// The link sent to an invited person (or shown to a user adding a device).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvitationLink {
    /// The server.
    pub server: ServerAddr,
    /// The organization.
    pub organization: OrganizationId,
    /// The invitation's token.
    pub token: InvitationToken,
}

impl FromStr for InvitationLink {
    type Err = LinkError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (server, organization, token) = parse_link(s, "invitation")?;
        Ok(Self {
            server,
            organization,
            token: token.parse()?,
        })
    }
}

impl fmt::Display for InvitationLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/invitation/{}#{}",
            self.server, self.organization, self.token
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    #[test]
    fn links_round_trip() {
        let link = InvitationLink {
            server: ServerAddr::parse("http://127.0.0.1:6770").unwrap(),
            organization: "acme".parse().unwrap(),
            token: InvitationToken::generate(&mut OsRng),
        };
        let text = link.to_string();
        assert!(text.starts_with("http://127.0.0.1:6770/invitation/acme#"));
        assert_eq!(text.parse::<InvitationLink>().unwrap(), link);
        let boot = BootstrapLink {
            server: ServerAddr::parse("https://strongroom.example.com/").unwrap(),
            organization: "acme".parse().unwrap(),
            token: BootstrapToken::generate(&mut OsRng),
        };
        assert_eq!(boot.to_string().parse::<BootstrapLink>().unwrap(), boot);
    }

    #[test]
    fn bad_links_are_refused() {
        let t = InvitationToken::generate(&mut OsRng);
        for bad in [
            "not a url".to_string(),
            format!("ftp://h/invitation/acme#{t}"),
            format!("http://h/bootstrap/acme#{t}"),
            "http://h/invitation/acme".to_string(),
            format!("http://h/invitation/a/b#{t}"),
            "http://h/invitation/acme#short".to_string(),
            format!("http://h/invitation/ac%20me#{t}"),
        ] {
            assert!(bad.parse::<InvitationLink>().is_err(), "{bad}");
        }
    }
}
