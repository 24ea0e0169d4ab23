//! Identifiers and validated names.

use crate::crypto::hash::derive_key;
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Why a textual identifier or name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {value:?}: {reason}")]
pub struct InvalidName {
    /// What was parsed ("email", "organization name"...).
    pub kind: &'static str,
    /// The refused value, truncated.
    pub value: String,
    /// Why.
    pub reason: &'static str,
}

impl InvalidName {
    fn new(kind: &'static str, value: &str, reason: &'static str) -> Self {
        Self {
            kind,
            value: value.chars().take(80).collect(),
            reason,
        }
    }
}

macro_rules! random_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(#[serde(with = "serde_bytes")] [u8; 16]);

        impl $name {
            /// A new random identifier.
            pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
                let mut bytes = [0u8; 16];
                rng.fill_bytes(&mut bytes);
                Self(bytes)
            }
            /// From raw bytes.
            pub const fn from_bytes(bytes: [u8; 16]) -> Self {
                Self(bytes)
            }
            /// The raw bytes.
            pub const fn as_bytes(&self) -> &[u8; 16] {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&data_encoding::HEXLOWER.encode(&self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({self})", stringify!($name))
            }
        }

        impl FromStr for $name {
            type Err = InvalidName;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let bytes = data_encoding::HEXLOWER_PERMISSIVE
                    .decode(s.as_bytes())
                    .ok()
                    .and_then(|b| <[u8; 16]>::try_from(b).ok())
                    .ok_or_else(|| InvalidName::new(stringify!($name), s, "expected 32 hexadecimal digits"))?;
                Ok(Self(bytes))
            }
        }
    };
}

random_id!(
    /// A user of an organization.
    UserId
);
random_id!(
    /// One device of a user.
    DeviceId
);
random_id!(
    /// A realm on the server: a workspace, or the realm of one user's own manifest.
    RealmId
);
random_id!(
    /// A file, folder or symlink: the id of the vlob that holds its versions.
    EntryId
);
random_id!(
    /// An immutable encrypted chunk of file content.
    BlockId
);

impl RealmId {
    /// The realm holding `user`'s own manifest: derived, so every device of the user finds it.
    pub fn of_user(user: &UserId) -> Self {
        let digest = derive_key("strongroom 2026-11 user realm id", user.as_bytes());
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest[..16]);
        Self(id)
    }
}

impl From<RealmId> for EntryId {
    /// A workspace's root folder has the workspace's id.
    fn from(realm: RealmId) -> Self {
        EntryId(realm.0)
    }
}

/// The name of an organization on a server: 1 to 64 ASCII letters, digits, `-` or `_`,
/// starting with a letter or digit. It appears in URLs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OrganizationId(String);

impl OrganizationId {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for OrganizationId {
    type Error = InvalidName;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        let kind = "organization name";
        if s.is_empty() || s.len() > 64 {
            return Err(InvalidName::new(kind, &s, "must be 1 to 64 characters"));
        }
        if !s.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err(InvalidName::new(
                kind,
                &s,
                "must start with a letter or a digit",
            ));
        }
        if !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(InvalidName::new(
                kind,
                &s,
                "may hold only letters, digits, '-' and '_'",
            ));
        }
        Ok(Self(s))
    }
}

impl From<OrganizationId> for String {
    fn from(id: OrganizationId) -> String {
        id.0
    }
}

impl FromStr for OrganizationId {
    type Err = InvalidName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::try_from(s.to_owned())
    }
}

impl fmt::Display for OrganizationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An email address, kept in lower case so that one address is one identity.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Email {
    type Error = InvalidName;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        let kind = "email address";
        if s.len() > 254 {
            return Err(InvalidName::new(kind, &s, "is longer than 254 characters"));
        }
        if s.chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
        {
            return Err(InvalidName::new(
                kind,
                &s,
                "contains spaces or forbidden characters",
            ));
        }
        let mut parts = s.split('@');
        let (local, domain) = match (parts.next(), parts.next(), parts.next()) {
            (Some(l), Some(d), None) => (l, d),
            _ => return Err(InvalidName::new(kind, &s, "must contain exactly one '@'")),
        };
        if local.is_empty() || domain.is_empty() || domain.starts_with('.') || domain.ends_with('.')
        {
            return Err(InvalidName::new(
                kind,
                &s,
                "needs a name before and a domain after '@'",
            ));
        }
        Ok(Self(s.to_lowercase()))
    }
}

impl From<Email> for String {
    fn from(e: Email) -> String {
        e.0
    }
}

impl FromStr for Email {
    type Err = InvalidName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::try_from(s.to_owned())
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! display_name {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $max:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidName;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                let trimmed = s.trim();
                if trimmed.is_empty() || trimmed.chars().count() > $max {
                    return Err(InvalidName::new($kind, &s, concat!("must be 1 to ", $max, " characters")));
                }
                if trimmed.chars().any(char::is_control) {
                    return Err(InvalidName::new($kind, &s, "contains control characters"));
                }
                Ok(Self(trimmed.to_owned()))
            }
        }

        impl From<$name> for String {
            fn from(n: $name) -> String {
                n.0
            }
        }

        impl FromStr for $name {
            type Err = InvalidName;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::try_from(s.to_owned())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

display_name!(
    /// A person's name as shown to others.
    HumanName,
    "name",
    128
);
display_name!(
    /// A device's label as shown to its user ("laptop", "phone").
    DeviceLabel,
    "device label",
    64
);

macro_rules! secret_token {
    ($(#[$doc:meta])* $name:ident, $context:literal) => {
        $(#[$doc])*
        ///
        /// A bearer secret: compared in constant time, zeroized on drop, never logged. Its
        /// [`Display`](fmt::Display) is the URL form (base32, lower case).
        #[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
        #[serde(transparent)]
        pub struct $name(#[serde(with = "serde_bytes")] [u8; 32]);

        impl $name {
            /// A new random token.
            pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
                let mut bytes = [0u8; 32];
                rng.fill_bytes(&mut bytes);
                Self(bytes)
            }

            /// The public identifier of this token: a one-way digest that the server stores and
            /// logs instead of the token itself.
            pub fn id(&self) -> TokenId {
                let digest = derive_key($context, &self.0);
                let mut id = [0u8; 16];
                id.copy_from_slice(&digest[..16]);
                TokenId(id)
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.0.ct_eq(&other.0).into()
            }
        }
        impl Eq for $name {}

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}(id {})", stringify!($name), self.id())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&data_encoding::BASE32_NOPAD.encode(&self.0).to_lowercase())
            }
        }

        impl FromStr for $name {
            type Err = InvalidName;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let bytes = data_encoding::BASE32_NOPAD
                    .decode(s.trim().to_uppercase().as_bytes())
                    .ok()
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .ok_or_else(|| InvalidName::new(stringify!($name), "(hidden)", "expected 52 base32 characters"))?;
                Ok(Self(bytes))
            }
        }
    };
}

secret_token!(
    /// The token that lets one person bootstrap an organization, once.
    BootstrapToken,
    "strongroom 2026-11 bootstrap token id"
);
secret_token!(
    /// The token that lets one person claim an invitation.
    InvitationToken,
    "strongroom 2026-11 invitation token id"
);

/// The public identifier of a secret token (a digest of it).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TokenId(#[serde(with = "serde_bytes")] [u8; 16]);

impl TokenId {
    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&data_encoding::HEXLOWER.encode(&self.0))
    }
}

impl fmt::Debug for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenId({self})")
    }
}

impl FromStr for TokenId {
    type Err = InvalidName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = data_encoding::HEXLOWER_PERMISSIVE
            .decode(s.as_bytes())
            .ok()
            .and_then(|b| <[u8; 16]>::try_from(b).ok())
            .ok_or_else(|| InvalidName::new("token id", s, "expected 32 hexadecimal digits"))?;
        Ok(Self(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    #[test]
    fn ids_round_trip_as_text() {
        let u = UserId::generate(&mut OsRng);
        assert_eq!(u.to_string().parse::<UserId>().unwrap(), u);
        let t = InvitationToken::generate(&mut OsRng);
        assert_eq!(t.to_string().parse::<InvitationToken>().unwrap(), t);
        assert_eq!(t.to_string().len(), 52);
        assert_eq!(t.id().to_string().parse::<TokenId>().unwrap(), t.id());
    }

    #[test]
    fn token_debug_hides_the_secret() {
        let t = BootstrapToken::generate(&mut OsRng);
        assert!(!format!("{t:?}").contains(&t.to_string()));
    }

    #[test]
    fn token_ids_depend_on_the_kind() {
        let bytes = [7u8; 32];
        assert_ne!(
            BootstrapToken(bytes).id().as_bytes(),
            InvitationToken(bytes).id().as_bytes()
        );
    }

    #[test]
    fn organization_names() {
        assert!("acme-corp_2".parse::<OrganizationId>().is_ok());
        for bad in ["", "-x", "a b", "a/b", "é", &"x".repeat(65)] {
            assert!(bad.parse::<OrganizationId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn emails() {
        assert_eq!(
            "Bob@Example.com".parse::<Email>().unwrap().as_str(),
            "bob@example.com"
        );
        for bad in [
            "", "bob", "bob@", "@x.com", "a@b@c", "a b@c.d", "a@.com", "a<b>@c.d",
        ] {
            assert!(bad.parse::<Email>().is_err(), "{bad}");
        }
    }

    /// Whether `text` decodes as a `T` the way certificates, invitations and messages carry it
    /// (MessagePack through serde).
    fn decodes<T: serde::de::DeserializeOwned>(text: &str) -> bool {
        rmp_serde::from_slice::<T>(&rmp_serde::to_vec(text).unwrap()).is_ok()
    }

    #[test]
    fn decoding_refuses_control_characters_as_parsing_does() {
        // What the server or another member sends goes through `try_from` too: no email, name or
        // label with a control character (C0, DEL, C1) ever decodes.
        for control in [
            "\x1b", "\x07", "\r", "\n", "\t", "\0", "\x7f", "\u{9b}", "\u{85}",
        ] {
            let name = format!("Mal{control}lory");
            assert!(!decodes::<HumanName>(&name), "{name:?}");
            assert!(!decodes::<DeviceLabel>(&name), "{name:?}");
            assert!(!decodes::<OrganizationId>(&name), "{name:?}");
            let email = format!("mal{control}lory@example.com");
            assert!(!decodes::<Email>(&email), "{email:?}");
        }
        assert!(decodes::<HumanName>("Mallory") && decodes::<DeviceLabel>("laptop"));
        assert!(decodes::<Email>("mallory@example.com"));
        // Bidirectional controls are no control characters: they decode, and the command line
        // shows them escaped.
        assert!(decodes::<HumanName>("Mal\u{202e}lory"));
        assert!(decodes::<Email>("mal\u{202e}lory@example.com"));
    }

    #[test]
    fn names() {
        assert_eq!(" Alice ".parse::<HumanName>().unwrap().as_str(), "Alice");
        assert!("".parse::<HumanName>().is_err());
        assert!("a\u{7}".parse::<DeviceLabel>().is_err());
        assert!("x".repeat(65).parse::<DeviceLabel>().is_err());
    }
}
