use crate::ids::TokenId;
use std::str::FromStr;

/// What the server announces on its event streams (Server-Sent Events).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEvent {
    /// A certificate was added; the chain now has `count` certificates.
    Certificates {
        /// The new length of the chain.
        count: u64,
    },
    /// An invitation's exchange moved (a step, an abort, a new attempt, completion).
    Invitation {
        /// The invitation.
        id: TokenId,
    },
    /// A realm changed (a vlob was written, or its certificates changed).
    Realm {
        /// The realm.
        id: crate::ids::RealmId,
        /// Its checkpoint after the change.
        checkpoint: u64,
    },
    /// A message arrived for the listening user.
    Message,
    /// The stream fell behind and dropped events: poll to catch up.
    Lagged,
}

/// An event that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unreadable server event {name:?}")]
pub struct EventError {
    /// The event name, truncated.
    pub name: String,
}

impl ServerEvent {
    /// The SSE `event:` name and `data:` text.
    pub fn to_sse(&self) -> (&'static str, String) {
        match self {
            ServerEvent::Certificates { count } => ("certificates", count.to_string()),
            ServerEvent::Invitation { id } => ("invitation", id.to_string()),
            ServerEvent::Realm { id, checkpoint } => ("realm", format!("{id} {checkpoint}")),
            ServerEvent::Message => ("message", String::new()),
            ServerEvent::Lagged => ("lagged", String::new()),
        }
    }

    /// Reads an event from its SSE name and data.
    pub fn from_sse(name: &str, data: &str) -> Result<Self, EventError> {
        let err = || EventError {
            name: name.chars().take(32).collect(),
        };
        match name {
            "certificates" => Ok(ServerEvent::Certificates {
                count: u64::from_str(data.trim()).map_err(|_| err())?,
            }),
            "invitation" => Ok(ServerEvent::Invitation {
                id: data.trim().parse().map_err(|_| err())?,
            }),
            "realm" => {
                let (id, checkpoint) = data.trim().split_once(' ').ok_or_else(err)?;
                Ok(ServerEvent::Realm {
                    id: id.parse().map_err(|_| err())?,
                    checkpoint: checkpoint.parse().map_err(|_| err())?,
                })
            }
            "message" => Ok(ServerEvent::Message),
            "lagged" => Ok(ServerEvent::Lagged),
            _ => Err(err()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip() {
        for e in [
            ServerEvent::Certificates { count: 7 },
            ServerEvent::Lagged,
            ServerEvent::Message,
            ServerEvent::Realm {
                id: crate::ids::RealmId::from_bytes([3; 16]),
                checkpoint: 42,
            },
            ServerEvent::Invitation {
                id: "00112233445566778899aabbccddeeff".parse().unwrap(),
            },
        ] {
            let (name, data) = e.to_sse();
            assert_eq!(ServerEvent::from_sse(name, &data).unwrap(), e);
        }
        assert!(ServerEvent::from_sse("certificates", "x").is_err());
        assert!(ServerEvent::from_sse("nope", "1").is_err());
    }
}
