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
