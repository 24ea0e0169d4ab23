//! Invitations: the greeter and claimer sides of the exchange of [`strongroom_protocol::invite`],
//! relayed through the server, with people comparing codes in between.

mod claimer;
mod greeter;
mod relay;

pub use claimer::{ClaimOutcome, Claimant, claim, invitation_info};
pub use greeter::{GreetOutcome, greet};

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use strongroom_protocol::sas::SasCode;

/// How the two people compare codes: show this side's code, then ask which code the other
/// person read aloud. Called on a blocking thread.
pub trait CodeUi: Send + Sync + 'static {
    /// Shows `own` and returns the code the person picked among `candidates` (as typed).
    fn exchange_codes(&self, own: SasCode, candidates: [SasCode; 4]) -> std::io::Result<String>;
}

/// How long to wait for the other side at each step.
pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(600);

/// How the person on this side takes part: how codes are compared, how long to wait for the
/// other side, and what interrupts the exchange (Ctrl-C in the CLI). An interrupted exchange is
/// aborted on the server, so the other side stops too.
pub struct Participant {
    /// Shows codes and takes picks.
    pub ui: Arc<dyn CodeUi>,
    /// The longest wait for each step of the other side.
    pub timeout: Duration,
    /// Completes when the person interrupts.
    pub interrupted: Pin<Box<dyn Future<Output = ()> + Send>>,
}
