//! Invitations: the greeter and claimer sides of the exchange of [`strongroom_protocol::invite`],
//! relayed through the server, with people comparing codes in between.

mod claimer;
mod greeter;
mod relay;

pub use claimer::{ClaimOutcome, claim, invitation_info};
pub use greeter::{GreetOutcome, greet};

use strongroom_protocol::sas::SasCode;

/// How the two people compare codes: show this side's code, then ask which code the other
/// person read aloud. Called on a blocking thread.
pub trait CodeUi: Send + Sync + 'static {
    /// Shows `own` and returns the code the person picked among `candidates` (as typed).
    fn exchange_codes(&self, own: SasCode, candidates: [SasCode; 4]) -> std::io::Result<String>;
}

/// How long to wait for the other side at each step.
pub const DEFAULT_STEP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);
